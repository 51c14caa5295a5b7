import type { DockerConfig, HostTls } from './config/types.js';
import { fallbackConfig, setDockerConfig } from './context.js';

/**
 * Makes the transport treat `hosts` as insecure (plain HTTP allowed, TLS not verified), as
 * registries.conf `insecure = true` would, and `tls` as given for others. Tests only.
 */
export function useTestConfig(settings: {
  insecureHosts?: readonly string[];
  tls?: Record<string, Partial<HostTls>>;
  credentials?: DockerConfig['resolveCredentials'];
  endpointPlan?: DockerConfig['endpointPlan'];
}): void {
  setDockerConfig({
    resolveCredentials: settings.credentials ?? fallbackConfig.resolveCredentials,
    async hostTls(host, options) {
      if (settings.insecureHosts?.includes(host)) return { allowHttp: true, verify: false, ca: [] };
      const base = await fallbackConfig.hostTls(host, options);
      return { ...base, ...settings.tls?.[host] };
    },
    endpointPlan: settings.endpointPlan ?? fallbackConfig.endpointPlan,
  });
}
