// Preloaded by mutant-tests.ts: a property stops at its first failure, unshrunk.
import fc from 'fast-check';

fc.configureGlobal({ ...fc.readConfigureGlobal(), endOnFailure: true });
