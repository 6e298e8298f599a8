/** The fake API server lives in src/testing (the latency bench uses it too); tests import it from here. */
export * from '../../src/testing/fake-apiserver.js';
