import type { ResolvedConfig } from '../../config/index.js';
import type { RenderSettings } from './render/index.js';

export type KubernetesConfig = ResolvedConfig['kubernetes'];
export type ClusterConfig = KubernetesConfig['clusters'][number];

/** The identity `atrium render` assumes Atrium writes with: the ServiceAccount deploy/kubernetes creates. */
export const DEFAULT_WRITER = 'system:serviceaccount:atrium:atrium';

/**
 * What the renderers need for one cluster, from the `kubernetes` config and
 * that cluster's entry. `writer` is the identity Atrium writes with there
 * (found from the cluster at start; the config's or the default otherwise).
 */
export function renderSettings(k: KubernetesConfig, cluster: ClusterConfig | undefined, opts: { writer?: string; stopGraceSeconds: number }): RenderSettings {
  return {
    namespacePrefix: k.namespacePrefix,
    writer: opts.writer ?? k.writer ?? DEFAULT_WRITER,
    // reached through the API server's port-forward, pods need no ingress from anywhere
    atriumPods: cluster?.endpoint === 'apiserver' ? null : { namespace: k.atriumNamespace, labels: k.atriumPodLabels },
    ingressCidrs: cluster?.endpoint === 'apiserver' ? [] : k.ingressCidrs,
    defaultImage: k.defaultImage,
    storageClass: cluster?.storageClass ?? k.storageClass ?? null,
    volumeStorageClass: cluster?.volumeStorageClass ?? k.volumeStorageClass ?? null,
    sandboxed: k.sandboxed,
    tokenAudiences: k.tokenAudiences,
    tokenExpirationSeconds: k.tokenExpirationSeconds,
    mesh: k.meshPrincipal ? { principal: k.meshPrincipal } : null,
    memberReadOnly: k.memberReadOnly ? { userPrefix: k.memberReadOnly.userPrefix } : null,
    gpuPools: (cluster?.gpuPools ?? []).map((p) => ({ type: p.type, nodeSelector: p.nodeSelector, tolerations: p.tolerations })),
    nodeSelector: cluster?.nodeSelector ?? {},
    tolerations: cluster?.tolerations ?? [],
    stopGraceSeconds: opts.stopGraceSeconds,
  };
}
