export type { MemoryCapabilities, MemoryCounters, MemoryImage } from './memory-transport.js';
export { MemoryStore } from './memory-transport.js';
export type { RandomImageOptions, TestImage, TestIndex, TestLayer } from './random.js';
export { makeTar, randomBytes, randomImage, randomIndex, seededRandom } from './random.js';
export type { RunResult } from './run.js';
export { runProgram } from './run.js';
export type {
  CountingProxy,
  DockerdServer,
  ProxiedRequest,
  StartDockerdOptions,
} from './servers/dockerd.js';
export { DOCKERD_BINARY, startCountingProxy, startDockerd } from './servers/dockerd.js';
export type {
  ActiveFault,
  FaultAction,
  FaultProxy,
  FaultProxyOptions,
  FaultRule,
  ProxyRequestRecord,
  RequestMatch,
} from './servers/fault-proxy.js';
export { BLOB_GET, BLOB_UPLOAD, matchesRequest, startFaultProxy } from './servers/fault-proxy.js';
export type {
  RegistryAuthMode,
  RegistryServer,
  RegistryUser,
  StartRegistryOptions,
} from './servers/registry.js';
export { DEFAULT_REGISTRY_USER, startRegistry } from './servers/registry.js';
export type {
  TokenAccess,
  TokenAclRequest,
  TokenAuthForm,
  TokenIssuer,
  TokenIssuerOptions,
  TokenIssuerSettings,
  TokenRequestRecord,
} from './servers/token-issuer.js';
export { startTokenIssuer } from './servers/token-issuer.js';
export type { ReadBackImage } from './validate.js';
export { readImage } from './validate.js';
