import { describeBlobInfoCacheConformance } from '@img/testing/conformance';
import { MemoryBlobInfoCache } from './memory.js';

describeBlobInfoCacheConformance('memory', ({ now }) => new MemoryBlobInfoCache({ now }));
