import type { V1RuntimeClass, V1ValidatingAdmissionPolicy, V1ValidatingAdmissionPolicyBinding } from '@kubernetes/client-node';
import { asKube, LABEL_SCOPE, LABEL_SENSITIVE, MANAGED_BY, type KubeObject, type RenderSettings } from './types.js';

const clusterLabels = { ...MANAGED_BY, [LABEL_SCOPE]: 'cluster' };

/** The sandboxed tier's RuntimeClass (Kata, or whatever handler the nodes have), with the guest's overhead counted. */
export function renderRuntimeClass(settings: RenderSettings): KubeObject {
  const rc: V1RuntimeClass = {
    apiVersion: 'node.k8s.io/v1',
    kind: 'RuntimeClass',
    metadata: { name: settings.sandboxed.runtimeClass, labels: clusterLabels },
    handler: settings.sandboxed.handler,
    overhead: { podFixed: { cpu: settings.sandboxed.overhead.cpu, memory: settings.sandboxed.overhead.memory } },
  };
  return asKube(rc);
}

/** The namespaced kinds nobody but Atrium (and the cluster's own controllers) may write in a team namespace. */
const GUARDED = [
  { apiGroups: [''], resources: ['pods', 'services', 'secrets', 'configmaps', 'persistentvolumeclaims', 'serviceaccounts', 'resourcequotas', 'limitranges'] },
  { apiGroups: ['apps'], resources: ['statefulsets', 'deployments', 'replicasets', 'daemonsets'] },
  { apiGroups: ['batch'], resources: ['jobs', 'cronjobs'] },
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'] },
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles', 'rolebindings'] },
  { apiGroups: ['security.istio.io'], resources: ['authorizationpolicies'] },
];

/** CEL string literal */
function cel(s: string): string {
  return `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/**
 * Two policies the API server enforces on everyone, whatever RBAC grants:
 *  - `atrium-only-writer`: in namespaces Atrium manages, only Atrium, the
 *    cluster's controllers (kube-system service accounts, the controller
 *    manager, scheduler and kubelets) and cluster administrators
 *    (`system:masters`) create, change or delete pods, workloads, policies,
 *    Secrets and roles, or exec, attach or port-forward into pods. A plain
 *    `edit` binding therefore can neither run pods of its own, nor enter
 *    others' workspaces, nor rewrite their Secrets, nor loosen the
 *    NetworkPolicies, nor drop the sandboxed RuntimeClass.
 *  - `atrium-sandboxed-tier`: in sensitive teams' namespaces every pod runs
 *    with the sandboxed RuntimeClass, whoever creates it.
 */
export function renderAdmissionPolicies(settings: RenderSettings): KubeObject[] {
  const onlyWriter: V1ValidatingAdmissionPolicy = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name: 'atrium-only-writer', labels: clusterLabels },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: {
        namespaceSelector: { matchLabels: { ...MANAGED_BY } },
        resourceRules: [
          ...GUARDED.map((g) => ({ ...g, apiVersions: ['*'], operations: ['CREATE', 'UPDATE', 'DELETE'] })),
          // into someone's running workspace: a shell, its terminal, its ports, or a debugging container added to it
          { apiGroups: [''], apiVersions: ['v1'], resources: ['pods/exec', 'pods/attach', 'pods/portforward'], operations: ['CONNECT'] },
          { apiGroups: [''], apiVersions: ['v1'], resources: ['pods/ephemeralcontainers'], operations: ['UPDATE'] },
        ],
      },
      validations: [
        {
          expression: [
            `request.userInfo.username == ${cel(settings.writer)}`,
            "request.userInfo.username.startsWith('system:serviceaccount:kube-system:')",
            "request.userInfo.username in ['system:kube-controller-manager', 'system:kube-scheduler']",
            "request.userInfo.username.startsWith('system:node:')",
            "(has(request.userInfo.groups) && 'system:masters' in request.userInfo.groups)",
          ].join(' || '),
          message: 'Atrium manages this namespace: workspaces, their policies and Secrets change only through Atrium',
          reason: 'Forbidden',
        },
      ],
    },
  };
  const sandboxed: V1ValidatingAdmissionPolicy = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name: 'atrium-sandboxed-tier', labels: clusterLabels },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: {
        namespaceSelector: { matchLabels: { ...MANAGED_BY, [LABEL_SENSITIVE]: 'true' } },
        resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE', 'UPDATE'] }],
      },
      validations: [
        {
          expression: `has(object.spec.runtimeClassName) && object.spec.runtimeClassName == ${cel(settings.sandboxed.runtimeClass)}`,
          message: `pods of sensitive teams run only with the sandboxed RuntimeClass ${settings.sandboxed.runtimeClass}`,
          reason: 'Forbidden',
        },
      ],
    },
  };
  const bind = (policyName: string): V1ValidatingAdmissionPolicyBinding => ({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name: policyName, labels: clusterLabels },
    spec: { policyName, validationActions: ['Deny'] },
  });
  return [onlyWriter, bind('atrium-only-writer'), sandboxed, bind('atrium-sandboxed-tier')].map(asKube);
}

/** What a cluster needs once, before any team: the sandboxed RuntimeClass and the admission policies. */
export function renderClusterScope(settings: RenderSettings): KubeObject[] {
  return [renderRuntimeClass(settings), ...renderAdmissionPolicies(settings)];
}
