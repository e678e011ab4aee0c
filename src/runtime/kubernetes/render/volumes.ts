import { createHash } from 'node:crypto';
import { formatBytes } from '../../../domain/index.js';
import type { VolumeSpec, VolumeState } from '../../types.js';
import { namespaceOf } from './tenant.js';
import { LABEL_COMPONENT, LABEL_TEAM, MANAGED_BY, type KubeObject, type RenderSettings } from './types.js';

/** The label naming a volume (`<team>.<name>`) on its claims and on the volumes made for its datasets. */
export const LABEL_VOLUME = 'atrium.dev/volume';

/** A team volume's claim in its own namespace, and the claim a dataset gets in a namespace it is published to. */
export function volumeClaimName(owner: string, name: string, consumer: string = owner): string {
  return owner === consumer ? `vol-${name}` : `ds-${owner}-${name}`;
}

/** The PersistentVolume made for a dataset in one namespace: a name per (consumer, owner, volume), within 63 characters. */
export function datasetVolumeName(consumerNamespace: string, owner: string, name: string): string {
  return `atrium-ds-${createHash('sha256').update(`${consumerNamespace}/${owner}/${name}`).digest('hex').slice(0, 20)}`;
}

const volumeLabel = (v: Pick<VolumeState, 'team' | 'name'>) => `${v.team}.${v.name}`;

/**
 * A team volume: a ReadWriteMany claim in the team's namespace, of the
 * volume's size, of `storageClass` (the home class when unset). A class
 * that allows expansion grows it when the volume grows.
 */
export function renderVolumeClaim(settings: RenderSettings, v: Pick<VolumeState, 'team' | 'name' | 'sizeBytes'>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: volumeClaimName(v.team, v.name),
      namespace: namespaceOf(settings, v.team),
      labels: { ...MANAGED_BY, [LABEL_TEAM]: v.team, [LABEL_COMPONENT]: 'volume', [LABEL_VOLUME]: volumeLabel(v) },
    },
    spec: {
      accessModes: ['ReadWriteMany'],
      ...((settings.volumeStorageClass ?? settings.storageClass) ? { storageClassName: settings.volumeStorageClass ?? settings.storageClass } : {}),
      resources: { requests: { storage: formatBytes(v.sizeBytes) } },
    },
  };
}

/**
 * A dataset where it is published: a claim in the consumer team's
 * namespace, bound to a PersistentVolume of its own that points at the
 * storage the volume's claim is bound to (`source`, that claim's volume),
 * read-only, and kept (Retain) when the claim goes: the data belongs to the
 * owning team. Claims cannot cross namespaces; a second volume over the same
 * storage is how the cluster shares it (NFS, CephFS and most CSI file drivers allow it).
 */
export function renderDatasetClaim(settings: RenderSettings, v: Pick<VolumeState, 'team' | 'name' | 'sizeBytes'>, consumer: string, source: KubeObject): KubeObject[] {
  const namespace = namespaceOf(settings, consumer);
  const claim = volumeClaimName(v.team, v.name, consumer);
  const pv = datasetVolumeName(namespace, v.team, v.name);
  const labels = { ...MANAGED_BY, [LABEL_TEAM]: consumer, [LABEL_COMPONENT]: 'dataset', [LABEL_VOLUME]: volumeLabel(v) };
  const { claimRef: _claimRef, storageClassName: _class, accessModes: _modes, persistentVolumeReclaimPolicy: _policy, ...storage } = (source.spec ?? {}) as Record<string, unknown>;
  return [
    {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: pv, labels },
      spec: {
        ...storage,
        accessModes: ['ReadOnlyMany'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: '',
        claimRef: { namespace, name: claim },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: claim, namespace, labels },
      spec: { accessModes: ['ReadOnlyMany'], storageClassName: '', volumeName: pv, resources: { requests: { storage: formatBytes(v.sizeBytes) } } },
    },
  ];
}

/** A workspace pod's volumes and its container's mounts for its team volumes and datasets (read-only where the spec says). */
export function workspaceVolumeMounts(spec: { team: string; volumes: VolumeSpec[] }) {
  return {
    volumes: spec.volumes.map((v, i) => ({ name: `volume-${i}`, persistentVolumeClaim: { claimName: volumeClaimName(v.team, v.name, spec.team), ...(v.readOnly ? { readOnly: true } : {}) } })),
    mounts: spec.volumes.map((v, i) => ({ name: `volume-${i}`, mountPath: v.path, ...(v.readOnly ? { readOnly: true } : {}) })),
  };
}
