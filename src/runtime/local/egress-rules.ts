/**
 * The nftables ruleset behind public egress on the local runtime, as text
 * for `nft -f -`: one table per Atrium (`inet atrium_<tag>`), replaced whole in one
 * transaction every time a workspace's link comes or goes, so what the
 * kernel holds is always exactly what the running workspaces need.
 *
 * A workspace with public egress has a veth (`a<tag>…` on the host) into a
 * network namespace of its own. From it, the rules let through DNS to the
 * platform's resolver and connections to public addresses out by the
 * uplink, masqueraded; they drop everything to private, carrier-grade NAT,
 * loopback, link-local (cloud metadata), multicast and reserved ranges, to
 * the host's own addresses and to every other workspace, and every
 * connection into a workspace that it did not open. The rules live on the
 * host, where nothing in a sandbox can change them.
 */

/** Destinations no workspace reaches, whatever its egress. */
export const BLOCKED_IPV4 = [
  '0.0.0.0/8', // this network
  '10.0.0.0/8', // private
  '100.64.0.0/10', // carrier-grade NAT
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local, cloud metadata (169.254.169.254)
  '172.16.0.0/12', // private
  '192.0.0.0/24', // IETF protocol assignments
  '192.168.0.0/16', // private
  '198.18.0.0/15', // benchmarking
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, broadcast
];

export interface EgressRulesInput {
  /** this Atrium's table (several may share a machine, each with its own subnet) */
  table: string;
  /** the name prefix of this Atrium's workspace links on the host */
  vethPrefix: string;
  /** the addresses workspace links use, e.g. 10.88.0.0/16 */
  subnet: string;
  /** the platform's resolver on the host, inside `subnet` */
  resolver: string;
  /** the interface public egress leaves by */
  uplink: string;
  /** every address of the host's own (IPv4), which no workspace reaches */
  hostAddresses: string[];
  /** when Atrium turned forwarding on for the uplink: nothing but workspace traffic is forwarded from it */
  guardUplink: boolean;
  /** every workspace link: whether it reaches public addresses, and the ranges it may reach besides */
  links: Array<{ veth: string; public: boolean; allow: string[] }>;
}

/** The whole table, replacing any earlier one of the name. */
export function egressRuleset(input: EgressRulesInput): string {
  const veths = `"${input.vethPrefix}*"`;
  const t = `inet ${input.table}`;
  const blocked = [...BLOCKED_IPV4, ...input.hostAddresses.map((a) => `${a}/32`)];
  return [
    // created first so that the delete finds it: the three lines are one transaction
    `table ${t} {}`,
    `delete table ${t}`,
    `table ${t} {`,
    '  set blocked {',
    '    type ipv4_addr; flags interval; auto-merge',
    `    elements = { ${blocked.join(', ')} }`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter - 10; policy accept;',
    `    iifname ${veths} jump from_workspace`,
    `    oifname ${veths} ct state established,related accept`,
    `    oifname ${veths} drop`,
    ...(input.guardUplink ? [`    iifname "${input.uplink}" drop`] : []),
    '  }',
    '  chain from_workspace {',
    '    meta nfproto ipv6 drop',
    // never other workspaces or the metadata service, whatever a profile allows
    `    ip daddr { ${input.subnet}, 169.254.169.254 } drop`,
    ...input.links.filter((l) => l.allow.length > 0).map((l) => `    iifname "${l.veth}" ip daddr { ${l.allow.join(', ')} } accept`),
    '    ip daddr @blocked drop',
    ...(input.links.some((l) => !l.public) ? [`    iifname { ${input.links.filter((l) => !l.public).map((l) => `"${l.veth}"`).join(', ')} } drop`] : []),
    `    oifname != "${input.uplink}" drop`,
    '    accept',
    '  }',
    '  chain input {',
    '    type filter hook input priority filter - 10; policy accept;',
    `    iifname ${veths} ip daddr ${input.resolver} meta l4proto { udp, tcp } th dport 53 accept`,
    `    iifname ${veths} ct state established,related accept`,
    `    iifname ${veths} drop`,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ip saddr ${input.subnet} oifname "${input.uplink}" masquerade`,
    '  }',
    '}',
    '',
  ].join('\n');
}
