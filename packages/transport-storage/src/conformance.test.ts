import { describeTransportConformance } from '@img/testing/conformance';
import { type TempStore, tempStore } from './test-fixtures.js';

let store: TempStore;
let n = 0;
describeTransportConformance(
  'containers-storage',
  async () => {
    store = await tempStore('vfs');
    return {
      newReference: () => store.ref(`localhost/conformance-${n++}:v1`),
      cleanup: () => store.cleanup(),
    };
  },
  { signatures: true, alreadyContainsManifest: true, formats: ['oci', 'docker'] },
);
