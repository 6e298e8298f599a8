/**
 * Tests for the nftables packet tracer (src/trace/nftables/): parsing of the
 * `nft -f` input kube-proxy writes and of `nft list` output, and tracing of
 * packets through upstream kube-proxy's nftables rulesets.
 *
 * The fixtures are upstream's expected rulesets (kubernetes/kubernetes
 * pkg/proxy/nftables proxier_test.go, TestOverallNFTablesRules and
 * TestTracePacketV6) written as a first-sync transaction, plus a UDP service
 * with three endpoints and an externalTrafficPolicy=Local service with a local
 * endpoint. The *_LISTED texts were printed by nft 1.0.6 (`nft list table …`)
 * in a throwaway network namespace after `nft -f` of the *_INPUT texts;
 * test/e2e/trace-nftables.test.ts checks that again against the nft on the PATH.
 */
import t from 'tap';
import {
  formatNftTrace, NftParseError, parseNftRuleset, traceNftPacket,
  type NftRuleset, type TracePacket, type TracePath, type TraceResult, type TraceStep,
} from '../../src/trace/nftables/index.js';

/** IPv4 ruleset as kube-proxy writes it (`nft -f` input), with the add/delete/flush commands of a first sync. */
const NFT_INPUT = `add table ip kube-proxy { comment "rules for kube-proxy" ; }
add chain ip kube-proxy filter-prerouting
delete chain ip kube-proxy filter-prerouting
add chain ip kube-proxy nat-prerouting
delete chain ip kube-proxy nat-prerouting
add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority dstnat - 10 ; }
flush chain ip kube-proxy filter-prerouting
add chain ip kube-proxy filter-input { type filter hook input priority -110 ; }
flush chain ip kube-proxy filter-input
add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }
flush chain ip kube-proxy filter-forward
add chain ip kube-proxy filter-output { type filter hook output priority -110 ; }
flush chain ip kube-proxy filter-output
add chain ip kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }
flush chain ip kube-proxy filter-output-post-dnat
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority dstnat ; }
flush chain ip kube-proxy nat-prerouting
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
flush chain ip kube-proxy nat-output
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority srcnat ; }
flush chain ip kube-proxy nat-postrouting

add chain ip kube-proxy nodeport-endpoints-check
flush chain ip kube-proxy nodeport-endpoints-check
add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
add chain ip kube-proxy service-endpoints-check
flush chain ip kube-proxy service-endpoints-check
add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
add chain ip kube-proxy firewall-check
flush chain ip kube-proxy firewall-check
add rule ip kube-proxy filter-prerouting ct state new jump firewall-check
add rule ip kube-proxy filter-output ct state new jump firewall-check
add chain ip kube-proxy services
flush chain ip kube-proxy services
add rule ip kube-proxy nat-output jump services
add rule ip kube-proxy nat-prerouting jump services
add chain ip kube-proxy masquerading
flush chain ip kube-proxy masquerading
add rule ip kube-proxy nat-postrouting jump masquerading
add chain ip kube-proxy cluster-ips-check
flush chain ip kube-proxy cluster-ips-check
add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
add rule ip kube-proxy filter-output-post-dnat ct state new jump cluster-ips-check
add chain ip kube-proxy mark-for-masquerade
flush chain ip kube-proxy mark-for-masquerade
add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
add rule ip kube-proxy masquerading mark set mark xor 0x4000
add rule ip kube-proxy masquerading masquerade fully-random

add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"
add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }
flush set ip kube-proxy nodeport-ips
add element ip kube-proxy nodeport-ips { 192.168.0.2 }

add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
flush chain ip kube-proxy reject-chain
add rule ip kube-proxy reject-chain reject
add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
flush set ip kube-proxy cluster-ips
flush map ip kube-proxy service-ips
flush map ip kube-proxy firewall-ips
flush map ip kube-proxy no-endpoint-services
flush map ip kube-proxy no-endpoint-nodeports
flush map ip kube-proxy service-nodeports

# svc1: ClusterIP
add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
flush chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
flush chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
add element ip kube-proxy cluster-ips { 172.30.0.41 }
add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80

# svc2: LoadBalancer, externalTrafficPolicy Local, no local endpoints
add chain ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80
flush chain ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80
add chain ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80
flush chain ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80
add chain ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80
flush chain ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80
add element ip kube-proxy cluster-ips { 172.30.0.42 }
add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy service-ips { 192.168.99.22 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy no-endpoint-services { 192.168.99.22 . tcp . 80 comment "ns2/svc2:p80" : drop }
add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy no-endpoint-services { 1.2.3.4 . tcp . 80 comment "ns2/svc2:p80" : drop }
add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment "ns2/svc2:p80" : drop }
add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 ip daddr 172.30.0.42 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit pod traffic"
add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit local traffic"
add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 }
add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 ip saddr 10.180.0.2 jump mark-for-masquerade
add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 meta l4proto tcp dnat to 10.180.0.2:80

# svc3: NodePort
add chain ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80
flush chain ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80
add chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
flush chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
add chain ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80
flush chain ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80
add element ip kube-proxy cluster-ips { 172.30.0.43 }
add element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80 }
add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 goto service-4AT6LBPK-ns3/svc3/tcp/p80
add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 }
add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80

# svc4: ExternalIP, two endpoints
add chain ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80
flush chain ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80
add chain ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80
flush chain ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80
add chain ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80
flush chain ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80
add chain ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80
flush chain ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80
add element ip kube-proxy cluster-ips { 172.30.0.44 }
add element ip kube-proxy service-ips { 172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80 }
add element ip kube-proxy service-ips { 192.168.99.33 . tcp . 80 : goto external-LAUZTJTB-ns4/svc4/tcp/p80 }
add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 ip daddr 172.30.0.44 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 goto service-LAUZTJTB-ns4/svc4/tcp/p80
add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 , 1 : goto endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }
add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 ip saddr 10.180.0.4 jump mark-for-masquerade
add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 meta l4proto tcp dnat to 10.180.0.4:80
add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 ip saddr 10.180.0.5 jump mark-for-masquerade
add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 meta l4proto tcp dnat to 10.180.0.5:80

# svc5: LoadBalancer with source ranges and session affinity
add chain ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
flush chain ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
add set ip kube-proxy affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
add chain ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80
flush chain ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80
add chain ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80
flush chain ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80
add chain ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80
flush chain ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80
add element ip kube-proxy cluster-ips { 172.30.0.45 }
add element ip kube-proxy service-ips { 172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy service-ips { 5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy firewall-ips { 5.6.7.8 . tcp . 80 comment "ns5/svc5:p80" : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3002 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip daddr 172.30.0.45 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 goto service-HVFWP5L3-ns5/svc5/tcp/p80
add rule ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 203.0.113.0/25 } drop
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 }
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { ip saddr }
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80

# svc6: no endpoints
add element ip kube-proxy cluster-ips { 172.30.0.46 }
add element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain }

# svc7: UDP, three endpoints
add chain ip kube-proxy endpoint-7AAAAAAA-ns7/svc7/udp/dns__10.180.0.7/5353
flush chain ip kube-proxy endpoint-7AAAAAAA-ns7/svc7/udp/dns__10.180.0.7/5353
add chain ip kube-proxy endpoint-7BBBBBBB-ns7/svc7/udp/dns__10.180.0.8/5353
flush chain ip kube-proxy endpoint-7BBBBBBB-ns7/svc7/udp/dns__10.180.0.8/5353
add chain ip kube-proxy endpoint-7CCCCCCC-ns7/svc7/udp/dns__10.180.0.9/5353
flush chain ip kube-proxy endpoint-7CCCCCCC-ns7/svc7/udp/dns__10.180.0.9/5353
add chain ip kube-proxy service-7SVCSVCS-ns7/svc7/udp/dns
flush chain ip kube-proxy service-7SVCSVCS-ns7/svc7/udp/dns
add element ip kube-proxy cluster-ips { 172.30.0.47 }
add element ip kube-proxy service-ips { 172.30.0.47 . udp . 53 : goto service-7SVCSVCS-ns7/svc7/udp/dns }
add rule ip kube-proxy service-7SVCSVCS-ns7/svc7/udp/dns ip daddr 172.30.0.47 udp dport 53 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-7SVCSVCS-ns7/svc7/udp/dns numgen random mod 3 vmap { 0 : goto endpoint-7AAAAAAA-ns7/svc7/udp/dns__10.180.0.7/5353 , 1 : goto endpoint-7BBBBBBB-ns7/svc7/udp/dns__10.180.0.8/5353 , 2 : goto endpoint-7CCCCCCC-ns7/svc7/udp/dns__10.180.0.9/5353 }
add rule ip kube-proxy endpoint-7AAAAAAA-ns7/svc7/udp/dns__10.180.0.7/5353 ip saddr 10.180.0.7 jump mark-for-masquerade
add rule ip kube-proxy endpoint-7AAAAAAA-ns7/svc7/udp/dns__10.180.0.7/5353 meta l4proto udp dnat to 10.180.0.7:5353
add rule ip kube-proxy endpoint-7BBBBBBB-ns7/svc7/udp/dns__10.180.0.8/5353 ip saddr 10.180.0.8 jump mark-for-masquerade
add rule ip kube-proxy endpoint-7BBBBBBB-ns7/svc7/udp/dns__10.180.0.8/5353 meta l4proto udp dnat to 10.180.0.8:5353
add rule ip kube-proxy endpoint-7CCCCCCC-ns7/svc7/udp/dns__10.180.0.9/5353 ip saddr 10.180.0.9 jump mark-for-masquerade
add rule ip kube-proxy endpoint-7CCCCCCC-ns7/svc7/udp/dns__10.180.0.9/5353 meta l4proto udp dnat to 10.180.0.9:5353

# svc8: NodePort, externalTrafficPolicy Local, one local and one remote endpoint
add chain ip kube-proxy endpoint-8LLLLLLL-ns8/svc8/tcp/p80__10.180.0.10/80
flush chain ip kube-proxy endpoint-8LLLLLLL-ns8/svc8/tcp/p80__10.180.0.10/80
add chain ip kube-proxy endpoint-8RRRRRRR-ns8/svc8/tcp/p80__10.180.1.10/80
flush chain ip kube-proxy endpoint-8RRRRRRR-ns8/svc8/tcp/p80__10.180.1.10/80
add chain ip kube-proxy service-8SVCSVCS-ns8/svc8/tcp/p80
flush chain ip kube-proxy service-8SVCSVCS-ns8/svc8/tcp/p80
add chain ip kube-proxy local-8SVCSVCS-ns8/svc8/tcp/p80
flush chain ip kube-proxy local-8SVCSVCS-ns8/svc8/tcp/p80
add chain ip kube-proxy external-8SVCSVCS-ns8/svc8/tcp/p80
flush chain ip kube-proxy external-8SVCSVCS-ns8/svc8/tcp/p80
add element ip kube-proxy cluster-ips { 172.30.0.48 }
add element ip kube-proxy service-ips { 172.30.0.48 . tcp . 80 : goto service-8SVCSVCS-ns8/svc8/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3008 : goto external-8SVCSVCS-ns8/svc8/tcp/p80 }
add rule ip kube-proxy service-8SVCSVCS-ns8/svc8/tcp/p80 ip daddr 172.30.0.48 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy external-8SVCSVCS-ns8/svc8/tcp/p80 ip saddr 10.0.0.0/8 goto service-8SVCSVCS-ns8/svc8/tcp/p80 comment "short-circuit pod traffic"
add rule ip kube-proxy external-8SVCSVCS-ns8/svc8/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
add rule ip kube-proxy external-8SVCSVCS-ns8/svc8/tcp/p80 fib saddr type local goto service-8SVCSVCS-ns8/svc8/tcp/p80 comment "short-circuit local traffic"
add rule ip kube-proxy external-8SVCSVCS-ns8/svc8/tcp/p80 goto local-8SVCSVCS-ns8/svc8/tcp/p80
add rule ip kube-proxy service-8SVCSVCS-ns8/svc8/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-8LLLLLLL-ns8/svc8/tcp/p80__10.180.0.10/80 , 1 : goto endpoint-8RRRRRRR-ns8/svc8/tcp/p80__10.180.1.10/80 }
add rule ip kube-proxy local-8SVCSVCS-ns8/svc8/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-8LLLLLLL-ns8/svc8/tcp/p80__10.180.0.10/80 }
add rule ip kube-proxy endpoint-8LLLLLLL-ns8/svc8/tcp/p80__10.180.0.10/80 ip saddr 10.180.0.10 jump mark-for-masquerade
add rule ip kube-proxy endpoint-8LLLLLLL-ns8/svc8/tcp/p80__10.180.0.10/80 meta l4proto tcp dnat to 10.180.0.10:80
add rule ip kube-proxy endpoint-8RRRRRRR-ns8/svc8/tcp/p80__10.180.1.10/80 ip saddr 10.180.1.10 jump mark-for-masquerade
add rule ip kube-proxy endpoint-8RRRRRRR-ns8/svc8/tcp/p80__10.180.1.10/80 meta l4proto tcp dnat to 10.180.1.10:80

# a service that went away: its element is deleted, its chain flushed and deleted
add chain ip kube-proxy endpoint-STALE000-ns9/gone/tcp/p80__10.180.9.9/80
add rule ip kube-proxy endpoint-STALE000-ns9/gone/tcp/p80__10.180.9.9/80 meta l4proto tcp dnat to 10.180.9.9:80
add element ip kube-proxy service-ips { 172.30.0.99 . tcp . 80 : goto endpoint-STALE000-ns9/gone/tcp/p80__10.180.9.9/80 }
delete element ip kube-proxy service-ips { 172.30.0.99 . tcp . 80 }
flush chain ip kube-proxy endpoint-STALE000-ns9/gone/tcp/p80__10.180.9.9/80
delete chain ip kube-proxy endpoint-STALE000-ns9/gone/tcp/p80__10.180.9.9/80
`;

/** NFT_INPUT as printed by `nft list table ip kube-proxy` (nft 1.0.6). */
const NFT_LISTED = `table ip kube-proxy {
	comment "rules for kube-proxy"
	set cluster-ips {
		type ipv4_addr
		comment "Active ClusterIPs"
		elements = { 172.30.0.41, 172.30.0.42,
			     172.30.0.43, 172.30.0.44,
			     172.30.0.45, 172.30.0.46,
			     172.30.0.47, 172.30.0.48 }
	}

	set nodeport-ips {
		type ipv4_addr
		comment "IPs that accept NodePort traffic"
		elements = { 192.168.0.2 }
	}

	map no-endpoint-services {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "vmap to drop or reject packets to services with no endpoints"
		elements = { 1.2.3.4 . tcp . 80 comment "ns2/svc2:p80" : drop,
			     192.168.99.22 . tcp . 80 comment "ns2/svc2:p80" : drop,
			     172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain }
	}

	map no-endpoint-nodeports {
		type inet_proto . inet_service : verdict
		comment "vmap to drop or reject packets to service nodeports with no endpoints"
		elements = { tcp . 3001 comment "ns2/svc2:p80" : drop }
	}

	map firewall-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "destinations that are subject to LoadBalancerSourceRanges"
		elements = { 5.6.7.8 . tcp . 80 comment "ns5/svc5:p80" : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }
	}

	map service-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"
		elements = { 172.30.0.47 . udp . 53 : goto service-7SVCSVCS-ns7/svc7/udp/dns,
			     1.2.3.4 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80,
			     5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80,
			     192.168.99.22 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80,
			     192.168.99.33 . tcp . 80 : goto external-LAUZTJTB-ns4/svc4/tcp/p80,
			     172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80,
			     172.30.0.42 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80,
			     172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80,
			     172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80,
			     172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80,
			     172.30.0.48 . tcp . 80 : goto service-8SVCSVCS-ns8/svc8/tcp/p80 }
	}

	map service-nodeports {
		type inet_proto . inet_service : verdict
		comment "NodePort traffic"
		elements = { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80,
			     tcp . 3002 : goto external-HVFWP5L3-ns5/svc5/tcp/p80,
			     tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80,
			     tcp . 3008 : goto external-8SVCSVCS-ns8/svc8/tcp/p80 }
	}

	set affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 {
		type ipv4_addr
		size 65535
		flags dynamic,timeout
		timeout 3h
	}

	chain filter-prerouting {
		type filter hook prerouting priority dstnat - 10; policy accept;
		ct state new jump firewall-check
	}

	chain filter-input {
		type filter hook input priority -110; policy accept;
		ct state new jump nodeport-endpoints-check
		ct state new jump service-endpoints-check
	}

	chain filter-forward {
		type filter hook forward priority -110; policy accept;
		ct state new jump service-endpoints-check
		ct state new jump cluster-ips-check
	}

	chain filter-output {
		type filter hook output priority -110; policy accept;
		ct state new jump service-endpoints-check
		ct state new jump firewall-check
	}

	chain filter-output-post-dnat {
		type filter hook output priority -90; policy accept;
		ct state new jump cluster-ips-check
	}

	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}

	chain nat-output {
		type nat hook output priority -100; policy accept;
		jump services
	}

	chain nat-postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		jump masquerading
	}

	chain nodeport-endpoints-check {
		ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
	}

	chain service-endpoints-check {
		ip daddr . meta l4proto . th dport vmap @no-endpoint-services
	}

	chain firewall-check {
		ip daddr . meta l4proto . th dport vmap @firewall-ips
	}

	chain services {
		ip daddr . meta l4proto . th dport vmap @service-ips
		ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
	}

	chain masquerading {
		meta mark & 0x00004000 == 0x00000000 return
		meta mark set meta mark ^ 0x00004000
		masquerade fully-random
	}

	chain cluster-ips-check {
		ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
		ip daddr 172.30.0.0/16 drop comment "Drop traffic to unallocated ClusterIPs"
	}

	chain mark-for-masquerade {
		meta mark set meta mark | 0x00004000
	}

	chain reject-chain {
		comment "helper for @no-endpoint-services / @no-endpoint-nodeports"
		reject
	}

	chain endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 {
		ip saddr 10.180.0.1 jump mark-for-masquerade
		meta l4proto tcp dnat to 10.180.0.1:80
	}

	chain service-ULMVA6XW-ns1/svc1/tcp/p80 {
		ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
		numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }
	}

	chain endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 {
		ip saddr 10.180.0.2 jump mark-for-masquerade
		meta l4proto tcp dnat to 10.180.0.2:80
	}

	chain service-42NFTM6N-ns2/svc2/tcp/p80 {
		ip daddr 172.30.0.42 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
		numgen random mod 1 vmap { 0 : goto endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 }
	}

	chain external-42NFTM6N-ns2/svc2/tcp/p80 {
		ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit pod traffic"
		fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
		fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit local traffic"
	}

	chain endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 {
		ip saddr 10.180.0.3 jump mark-for-masquerade
		meta l4proto tcp dnat to 10.180.0.3:80
	}

	chain service-4AT6LBPK-ns3/svc3/tcp/p80 {
		ip daddr 172.30.0.43 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
		numgen random mod 1 vmap { 0 : goto endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 }
	}

	chain external-4AT6LBPK-ns3/svc3/tcp/p80 {
		jump mark-for-masquerade
		goto service-4AT6LBPK-ns3/svc3/tcp/p80
	}

	chain endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 {
		ip saddr 10.180.0.4 jump mark-for-masquerade
		meta l4proto tcp dnat to 10.180.0.4:80
	}

	chain endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 {
		ip saddr 10.180.0.5 jump mark-for-masquerade
		meta l4proto tcp dnat to 10.180.0.5:80
	}

	chain service-LAUZTJTB-ns4/svc4/tcp/p80 {
		ip daddr 172.30.0.44 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
		numgen random mod 2 vmap { 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80, 1 : goto endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }
	}

	chain external-LAUZTJTB-ns4/svc4/tcp/p80 {
		jump mark-for-masquerade
		goto service-LAUZTJTB-ns4/svc4/tcp/p80
	}

	chain endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 {
		ip saddr 10.180.0.3 jump mark-for-masquerade
		update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { ip saddr }
		meta l4proto tcp dnat to 10.180.0.3:80
	}

	chain service-HVFWP5L3-ns5/svc5/tcp/p80 {
		ip daddr 172.30.0.45 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
		ip saddr @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
		numgen random mod 1 vmap { 0 : goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 }
	}

	chain external-HVFWP5L3-ns5/svc5/tcp/p80 {
		jump mark-for-masquerade
		goto service-HVFWP5L3-ns5/svc5/tcp/p80
	}

	chain firewall-HVFWP5L3-ns5/svc5/tcp/p80 {
		ip saddr != 203.0.113.0/25 drop
	}

	chain endpoint-7AAAAAAA-ns7/svc7/udp/dns__10.180.0.7/5353 {
		ip saddr 10.180.0.7 jump mark-for-masquerade
		meta l4proto udp dnat to 10.180.0.7:5353
	}

	chain endpoint-7BBBBBBB-ns7/svc7/udp/dns__10.180.0.8/5353 {
		ip saddr 10.180.0.8 jump mark-for-masquerade
		meta l4proto udp dnat to 10.180.0.8:5353
	}

	chain endpoint-7CCCCCCC-ns7/svc7/udp/dns__10.180.0.9/5353 {
		ip saddr 10.180.0.9 jump mark-for-masquerade
		meta l4proto udp dnat to 10.180.0.9:5353
	}

	chain service-7SVCSVCS-ns7/svc7/udp/dns {
		ip daddr 172.30.0.47 udp dport 53 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
		numgen random mod 3 vmap { 0 : goto endpoint-7AAAAAAA-ns7/svc7/udp/dns__10.180.0.7/5353, 1 : goto endpoint-7BBBBBBB-ns7/svc7/udp/dns__10.180.0.8/5353, 2 : goto endpoint-7CCCCCCC-ns7/svc7/udp/dns__10.180.0.9/5353 }
	}

	chain endpoint-8LLLLLLL-ns8/svc8/tcp/p80__10.180.0.10/80 {
		ip saddr 10.180.0.10 jump mark-for-masquerade
		meta l4proto tcp dnat to 10.180.0.10:80
	}

	chain endpoint-8RRRRRRR-ns8/svc8/tcp/p80__10.180.1.10/80 {
		ip saddr 10.180.1.10 jump mark-for-masquerade
		meta l4proto tcp dnat to 10.180.1.10:80
	}

	chain service-8SVCSVCS-ns8/svc8/tcp/p80 {
		ip daddr 172.30.0.48 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
		numgen random mod 2 vmap { 0 : goto endpoint-8LLLLLLL-ns8/svc8/tcp/p80__10.180.0.10/80, 1 : goto endpoint-8RRRRRRR-ns8/svc8/tcp/p80__10.180.1.10/80 }
	}

	chain local-8SVCSVCS-ns8/svc8/tcp/p80 {
		numgen random mod 1 vmap { 0 : goto endpoint-8LLLLLLL-ns8/svc8/tcp/p80__10.180.0.10/80 }
	}

	chain external-8SVCSVCS-ns8/svc8/tcp/p80 {
		ip saddr 10.0.0.0/8 goto service-8SVCSVCS-ns8/svc8/tcp/p80 comment "short-circuit pod traffic"
		fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
		fib saddr type local goto service-8SVCSVCS-ns8/svc8/tcp/p80 comment "short-circuit local traffic"
		goto local-8SVCSVCS-ns8/svc8/tcp/p80
	}
}
`;

/** IPv6 ruleset of upstream's TestTracePacketV6 (knftables dump form). */
const V6_INPUT = `add table ip6 kube-proxy { comment "rules for kube-proxy" ; }
add chain ip6 kube-proxy cluster-ips-check
add chain ip6 kube-proxy endpoint-2CRNCTTE-ns1/svc1/tcp/p80__fd00.10.180..2.1/80
add chain ip6 kube-proxy endpoint-ZVRFLKHO-ns1/svc1/tcp/p80__fd00.10.180..1/80
add chain ip6 kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80
add chain ip6 kube-proxy filter-forward { type filter hook forward priority -110 ; }
add chain ip6 kube-proxy filter-input { type filter hook input priority -110 ; }
add chain ip6 kube-proxy filter-output { type filter hook output priority -110 ; }
add chain ip6 kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }
add chain ip6 kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }
add chain ip6 kube-proxy firewall-check
add chain ip6 kube-proxy mark-for-masquerade
add chain ip6 kube-proxy masquerading
add chain ip6 kube-proxy nat-output { type nat hook output priority -100 ; }
add chain ip6 kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip6 kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip6 kube-proxy nodeport-endpoints-check
add chain ip6 kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
add chain ip6 kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
add chain ip6 kube-proxy service-endpoints-check
add chain ip6 kube-proxy services
add set ip6 kube-proxy cluster-ips { type ipv6_addr ; comment "Active ClusterIPs" ; }
add set ip6 kube-proxy nodeport-ips { type ipv6_addr ; comment "IPs that accept NodePort traffic" ; }
add map ip6 kube-proxy firewall-ips { type ipv6_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
add map ip6 kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
add map ip6 kube-proxy no-endpoint-services { type ipv6_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
add map ip6 kube-proxy service-ips { type ipv6_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip6 kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
add rule ip6 kube-proxy cluster-ips-check ip6 daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip6 kube-proxy cluster-ips-check ip6 daddr { fd00:10:96::/112 } drop comment "Drop traffic to unallocated ClusterIPs"
add rule ip6 kube-proxy endpoint-2CRNCTTE-ns1/svc1/tcp/p80__fd00.10.180..2.1/80 ip6 saddr fd00:10:180::2:1 jump mark-for-masquerade
add rule ip6 kube-proxy endpoint-2CRNCTTE-ns1/svc1/tcp/p80__fd00.10.180..2.1/80 meta l4proto tcp dnat to [fd00:10:180::2:1]:80
add rule ip6 kube-proxy endpoint-ZVRFLKHO-ns1/svc1/tcp/p80__fd00.10.180..1/80 ip6 saddr fd00:10:180::1 jump mark-for-masquerade
add rule ip6 kube-proxy endpoint-ZVRFLKHO-ns1/svc1/tcp/p80__fd00.10.180..1/80 meta l4proto tcp dnat to [fd00:10:180::1]:80
add rule ip6 kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 jump mark-for-masquerade
add rule ip6 kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 goto service-ULMVA6XW-ns1/svc1/tcp/p80
add rule ip6 kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip6 kube-proxy filter-forward ct state new jump cluster-ips-check
add rule ip6 kube-proxy filter-input ct state new jump nodeport-endpoints-check
add rule ip6 kube-proxy filter-input ct state new jump service-endpoints-check
add rule ip6 kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip6 kube-proxy filter-output ct state new jump firewall-check
add rule ip6 kube-proxy filter-output-post-dnat ct state new jump cluster-ips-check
add rule ip6 kube-proxy filter-prerouting ct state new jump firewall-check
add rule ip6 kube-proxy firewall-check ip6 daddr . meta l4proto . th dport vmap @firewall-ips
add rule ip6 kube-proxy mark-for-masquerade mark set mark or 0x4000
add rule ip6 kube-proxy masquerading mark and 0x4000 == 0 return
add rule ip6 kube-proxy masquerading mark set mark xor 0x4000
add rule ip6 kube-proxy masquerading masquerade fully-random
add rule ip6 kube-proxy nat-output jump services
add rule ip6 kube-proxy nat-postrouting jump masquerading
add rule ip6 kube-proxy nat-prerouting jump services
add rule ip6 kube-proxy nodeport-endpoints-check ip6 daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip6 kube-proxy reject-chain reject
add rule ip6 kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip6 daddr fd00:172:30::41 tcp dport 80 ip6 saddr != fd00:10::/64 jump mark-for-masquerade
add rule ip6 kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-ZVRFLKHO-ns1/svc1/tcp/p80__fd00.10.180..1/80 , 1 : goto endpoint-2CRNCTTE-ns1/svc1/tcp/p80__fd00.10.180..2.1/80 }
add rule ip6 kube-proxy service-endpoints-check ip6 daddr . meta l4proto . th dport vmap @no-endpoint-services
add rule ip6 kube-proxy services ip6 daddr . meta l4proto . th dport vmap @service-ips
add rule ip6 kube-proxy services ip6 daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
add element ip6 kube-proxy cluster-ips { fd00:172:30::41 }
add element ip6 kube-proxy nodeport-ips { 2001:db8::1 comment "test comment" }
add element ip6 kube-proxy nodeport-ips { 2001:db8:1::2 }
add element ip6 kube-proxy service-ips { fd00:172:30::41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
add element ip6 kube-proxy service-nodeports { tcp . 3001 comment "test comment" : goto external-ULMVA6XW-ns1/svc1/tcp/p80 }
`;

/** V6_INPUT as printed by `nft list table ip6 kube-proxy` (nft 1.0.6). */
const V6_LISTED = `table ip6 kube-proxy {
	comment "rules for kube-proxy"
	set cluster-ips {
		type ipv6_addr
		comment "Active ClusterIPs"
		elements = { fd00:172:30::41 }
	}

	set nodeport-ips {
		type ipv6_addr
		comment "IPs that accept NodePort traffic"
		elements = { 2001:db8::1 comment "test comment",
			     2001:db8:1::2 }
	}

	map firewall-ips {
		type ipv6_addr . inet_proto . inet_service : verdict
		comment "destinations that are subject to LoadBalancerSourceRanges"
	}

	map no-endpoint-nodeports {
		type inet_proto . inet_service : verdict
		comment "vmap to drop or reject packets to service nodeports with no endpoints"
	}

	map no-endpoint-services {
		type ipv6_addr . inet_proto . inet_service : verdict
		comment "vmap to drop or reject packets to services with no endpoints"
	}

	map service-ips {
		type ipv6_addr . inet_proto . inet_service : verdict
		comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"
		elements = { fd00:172:30::41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
	}

	map service-nodeports {
		type inet_proto . inet_service : verdict
		comment "NodePort traffic"
		elements = { tcp . 3001 comment "test comment" : goto external-ULMVA6XW-ns1/svc1/tcp/p80 }
	}

	chain cluster-ips-check {
		ip6 daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
		ip6 daddr fd00:10:96::/112 drop comment "Drop traffic to unallocated ClusterIPs"
	}

	chain endpoint-2CRNCTTE-ns1/svc1/tcp/p80__fd00.10.180..2.1/80 {
		ip6 saddr fd00:10:180::2:1 jump mark-for-masquerade
		meta l4proto tcp dnat to [fd00:10:180::2:1]:80
	}

	chain endpoint-ZVRFLKHO-ns1/svc1/tcp/p80__fd00.10.180..1/80 {
		ip6 saddr fd00:10:180::1 jump mark-for-masquerade
		meta l4proto tcp dnat to [fd00:10:180::1]:80
	}

	chain external-ULMVA6XW-ns1/svc1/tcp/p80 {
		jump mark-for-masquerade
		goto service-ULMVA6XW-ns1/svc1/tcp/p80
	}

	chain filter-forward {
		type filter hook forward priority -110; policy accept;
		ct state new jump service-endpoints-check
		ct state new jump cluster-ips-check
	}

	chain filter-input {
		type filter hook input priority -110; policy accept;
		ct state new jump nodeport-endpoints-check
		ct state new jump service-endpoints-check
	}

	chain filter-output {
		type filter hook output priority -110; policy accept;
		ct state new jump service-endpoints-check
		ct state new jump firewall-check
	}

	chain filter-output-post-dnat {
		type filter hook output priority -90; policy accept;
		ct state new jump cluster-ips-check
	}

	chain filter-prerouting {
		type filter hook prerouting priority dstnat - 10; policy accept;
		ct state new jump firewall-check
	}

	chain firewall-check {
		ip6 daddr . meta l4proto . th dport vmap @firewall-ips
	}

	chain mark-for-masquerade {
		meta mark set meta mark | 0x00004000
	}

	chain masquerading {
		meta mark & 0x00004000 == 0x00000000 return
		meta mark set meta mark ^ 0x00004000
		masquerade fully-random
	}

	chain nat-output {
		type nat hook output priority -100; policy accept;
		jump services
	}

	chain nat-postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		jump masquerading
	}

	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}

	chain nodeport-endpoints-check {
		ip6 daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
	}

	chain reject-chain {
		comment "helper for @no-endpoint-services / @no-endpoint-nodeports"
		reject
	}

	chain service-ULMVA6XW-ns1/svc1/tcp/p80 {
		ip6 daddr fd00:172:30::41 tcp dport 80 ip6 saddr != fd00:10::/64 jump mark-for-masquerade
		numgen random mod 2 vmap { 0 : goto endpoint-ZVRFLKHO-ns1/svc1/tcp/p80__fd00.10.180..1/80, 1 : goto endpoint-2CRNCTTE-ns1/svc1/tcp/p80__fd00.10.180..2.1/80 }
	}

	chain service-endpoints-check {
		ip6 daddr . meta l4proto . th dport vmap @no-endpoint-services
	}

	chain services {
		ip6 daddr . meta l4proto . th dport vmap @service-ips
		ip6 daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
	}
}
`;

/** `nft -a list table ip t` (with handles) after loading a small table and adding an element to its dynamic set. */
const H_LISTED = `table ip t { # handle 1
	set aff { # handle 2
		type ipv4_addr
		size 65535
		flags dynamic,timeout
		timeout 3h
		elements = { 10.0.0.2 timeout 1h expires 59m59s992ms }
	}

	chain c { # handle 1
		type filter hook forward priority filter; policy drop;
		tcp dport 1 accept # handle 3
		tcp dport 2 drop # handle 4
		ip saddr @aff drop comment "has affinity" # handle 5
		update @aff { ip saddr } accept # handle 6
	}
}
`;

const NODE_IPS = ['192.168.0.2', '192.168.1.2', '192.168.99.11', '2001:db8::1', '2001:db8:1::2'];
const OPTS = { localAddresses: NODE_IPS };
const NODE_IP = '192.168.0.2';
const EXTERNAL = '203.0.113.2';
const EXTERNAL_BLOCKED = '203.0.113.130';

const inputRules = parseNftRuleset(NFT_INPUT);
const listedRules = parseNftRuleset(NFT_LISTED);
const FORMS = [['nft -f input', inputRules], ['nft list output', listedRules]] as const;

function fwd(src: string, dst: string, dport: number, proto: TracePacket['proto'] = 'tcp'): TracePacket {
  return { origin: 'forward', src, dst, proto, dport };
}

function local(dst: string, dport: number, proto: TracePacket['proto'] = 'tcp', src = NODE_IP): TracePacket {
  return { origin: 'local', src, dst, proto, dport };
}

function trace(packet: TracePacket, rules: NftRuleset = inputRules): TraceResult {
  return traceNftPacket(rules, packet, OPTS);
}

function close(a: number, b: number, eps = 1e-9): boolean {
  return Math.abs(a - b) < eps;
}

function endpointMap(r: TraceResult): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of r.endpoints) out[`${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}`] = Math.round(e.probability * 1e6) / 1e6;
  return out;
}

function totalProbability(r: TraceResult): number {
  return r.paths.reduce((s, p) => s + p.probability, 0);
}

function onlyPath(r: TraceResult): TracePath {
  if (r.paths.length !== 1 || r.paths[0] === undefined) throw new Error(`expected one path, got ${r.paths.length}`);
  return r.paths[0];
}

function lastStep(p: TracePath): TraceStep {
  const s = p.steps[p.steps.length - 1];
  if (s === undefined) throw new Error('path has no steps');
  return s;
}

function pathTo(r: TraceResult, address: string): TracePath {
  const p = r.paths.find((x) => x.dnat?.address === address);
  if (p === undefined) throw new Error(`no path to ${address}`);
  return p;
}

t.test('both forms parse into the same tables, chains, rules, sets and maps', async (t) => {
  const shape = (rs: NftRuleset): unknown => [...rs.tables.values()].map((tb) => ({
    table: `${tb.family} ${tb.name}`,
    comment: tb.comment,
    chains: [...tb.chains.values()].map((c) => ({ name: c.name, base: c.base, rules: c.rules.length, comment: c.comment }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    sets: [...tb.sets.values()].map((s) => ({
      name: s.name, isMap: s.isMap, keyTypes: s.keyTypes, dataType: s.dataType, dynamic: s.dynamic, comment: s.comment,
      elements: s.elements.map((e) => `${e.keyText}${e.comment === undefined ? '' : ` comment ${e.comment}`}${e.verdict === undefined ? '' : ` : ${e.verdict.text}`}`).sort(),
    })).sort((a, b) => a.name.localeCompare(b.name)),
  }));
  t.same(shape(listedRules), shape(inputRules));

  for (const [name, rs] of FORMS) {
    const tb = rs.tables.get('ip kube-proxy');
    t.ok(tb, `${name}: table ip kube-proxy`);
    t.equal(tb?.comment, 'rules for kube-proxy', `${name}: table comment`);
    t.same(tb?.chains.get('filter-prerouting')?.base, { type: 'filter', hook: 'prerouting', priority: -110, policy: 'accept' },
      `${name}: "priority dstnat - 10" is -110`);
    t.same(tb?.chains.get('nat-prerouting')?.base, { type: 'nat', hook: 'prerouting', priority: -100, policy: 'accept' }, `${name}: dstnat`);
    t.same(tb?.chains.get('nat-postrouting')?.base, { type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' }, `${name}: srcnat`);
    t.equal(tb?.chains.get('filter-output-post-dnat')?.base?.priority, -90, `${name}: numeric priority`);
    t.equal(tb?.chains.get('services')?.base, null, `${name}: a regular chain has no hook`);
    t.equal(tb?.chains.get('filter-forward')?.rules.length, 2, `${name}: rules after flush chain`);
    t.equal(tb?.chains.get('reject-chain')?.comment, 'helper for @no-endpoint-services / @no-endpoint-nodeports', `${name}: chain comment`);
    t.notOk(tb?.chains.has('endpoint-STALE000-ns9/gone/tcp/p80__10.180.9.9/80'), `${name}: the deleted chain is gone`);
    const serviceIps = tb?.sets.get('service-ips');
    t.equal(serviceIps?.isMap, true);
    t.same(serviceIps?.keyTypes, ['ipv4_addr', 'inet_proto', 'inet_service'], `${name}: concatenated key type`);
    t.equal(serviceIps?.dataType, 'verdict');
    t.equal(serviceIps?.elements.length, 11, `${name}: the deleted element is gone`);
    t.notOk(serviceIps?.elements.some((e) => e.keyText.startsWith('172.30.0.99')), `${name}: delete element`);
    t.equal(tb?.sets.get('cluster-ips')?.elements.length, 8, `${name}: cluster-ips`);
    t.equal(tb?.sets.get('affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80')?.dynamic, true, `${name}: affinity set is dynamic`);
    t.equal(tb?.sets.get('cluster-ips')?.dynamic, false);
    const noEp = tb?.sets.get('no-endpoint-services')?.elements.find((e) => e.keyText === '172.30.0.46 . tcp . 80');
    t.same([noEp?.comment, noEp?.verdict?.kind, noEp?.verdict?.chain], ['ns6/svc6:p80', 'goto', 'reject-chain'], `${name}: element comment and verdict`);
    const rule = tb?.chains.get('cluster-ips-check')?.rules[0];
    t.equal(rule?.comment, 'Reject traffic to invalid ports of ClusterIPs', `${name}: rule comment`);
    t.equal(rule?.chain, 'cluster-ips-check');
    t.equal(rule?.table, 'ip kube-proxy');
  }
  const masq = inputRules.tables.get('ip kube-proxy')?.chains.get('masquerading')?.rules[0];
  t.equal(masq?.raw, 'mark and 0x4000 == 0 return', 'input form keeps the rule text after the chain name');
  const masqListed = listedRules.tables.get('ip kube-proxy')?.chains.get('masquerading')?.rules[0];
  t.equal(masqListed?.raw, 'meta mark & 0x00004000 == 0x00000000 return', 'list form keeps the printed rule text');
});

interface Case {
  name: string;
  packet: TracePacket;
  verdict: TraceResult['verdict'];
  endpoints?: Record<string, number>;
  masquerade?: TraceResult['masquerade'];
}

/** Expected outcomes: upstream's packet-flow tests for this ruleset, plus the obvious ones. */
const CASES: Case[] = [
  { name: 'pod to cluster IP', packet: fwd('10.0.0.2', '172.30.0.41', 80), verdict: 'ACCEPT', endpoints: { '10.180.0.1:80': 1 }, masquerade: 'never' },
  { name: 'hairpin to cluster IP', packet: fwd('10.180.0.1', '172.30.0.41', 80), verdict: 'ACCEPT', endpoints: { '10.180.0.1:80': 1 }, masquerade: 'always' },
  { name: 'off-cluster source to cluster IP', packet: fwd(EXTERNAL, '172.30.0.41', 80), verdict: 'ACCEPT', endpoints: { '10.180.0.1:80': 1 }, masquerade: 'always' },
  { name: 'host process to cluster IP', packet: local('172.30.0.41', 80), verdict: 'ACCEPT', endpoints: { '10.180.0.1:80': 1 }, masquerade: 'always' },
  { name: 'cluster IP, port not served', packet: fwd('10.0.0.2', '172.30.0.41', 443), verdict: 'REJECT', endpoints: {} },
  { name: 'cluster IP, protocol not served', packet: fwd('10.0.0.2', '172.30.0.41', 80, 'udp'), verdict: 'REJECT', endpoints: {} },
  { name: 'host process to cluster IP, port not served', packet: local('172.30.0.41', 443), verdict: 'REJECT', endpoints: {} },
  { name: 'unallocated cluster IP', packet: fwd('10.0.0.2', '172.30.0.50', 80), verdict: 'DROP', endpoints: {} },
  { name: 'service without endpoints', packet: fwd('10.0.0.2', '172.30.0.46', 80), verdict: 'REJECT', endpoints: {} },
  { name: 'host process to service without endpoints', packet: local('172.30.0.46', 80), verdict: 'REJECT', endpoints: {} },
  { name: 'two endpoints', packet: fwd('10.0.0.2', '172.30.0.44', 80), verdict: 'ACCEPT', endpoints: { '10.180.0.4:80': 0.5, '10.180.0.5:80': 0.5 }, masquerade: 'never' },
  { name: 'external IP, two endpoints', packet: fwd(EXTERNAL, '192.168.99.33', 80), verdict: 'ACCEPT', endpoints: { '10.180.0.4:80': 0.5, '10.180.0.5:80': 0.5 }, masquerade: 'always' },
  {
    name: 'UDP, three endpoints', packet: fwd('10.0.0.2', '172.30.0.47', 53, 'udp'), verdict: 'ACCEPT',
    endpoints: { '10.180.0.7:5353': 0.333333, '10.180.0.8:5353': 0.333333, '10.180.0.9:5353': 0.333333 }, masquerade: 'never',
  },
  { name: 'UDP service, TCP packet', packet: fwd('10.0.0.2', '172.30.0.47', 53, 'tcp'), verdict: 'REJECT', endpoints: {} },
  { name: 'external to node port', packet: fwd(EXTERNAL, NODE_IP, 3003), verdict: 'ACCEPT', endpoints: { '10.180.0.3:80': 1 }, masquerade: 'always' },
  { name: 'node port on an address not in nodeport-ips', packet: fwd(EXTERNAL, '192.168.1.2', 3003), verdict: 'ACCEPT', endpoints: {}, masquerade: 'never' },
  { name: 'allowed source to load balancer IP', packet: fwd(EXTERNAL, '5.6.7.8', 80), verdict: 'ACCEPT', endpoints: { '10.180.0.3:80': 1 }, masquerade: 'always' },
  { name: 'blocked source to load balancer IP', packet: fwd(EXTERNAL_BLOCKED, '5.6.7.8', 80), verdict: 'DROP', endpoints: {} },
  { name: 'blocked source to node port (source ranges do not apply)', packet: fwd(EXTERNAL_BLOCKED, NODE_IP, 3002), verdict: 'ACCEPT', endpoints: { '10.180.0.3:80': 1 }, masquerade: 'always' },
  { name: 'eTP=Local without local endpoints: external to LB IP', packet: fwd(EXTERNAL, '1.2.3.4', 80), verdict: 'DROP', endpoints: {} },
  { name: 'eTP=Local without local endpoints: external to external IP', packet: fwd(EXTERNAL, '192.168.99.22', 80), verdict: 'DROP', endpoints: {} },
  { name: 'eTP=Local without local endpoints: external to node port', packet: fwd(EXTERNAL, NODE_IP, 3001), verdict: 'DROP', endpoints: {} },
  { name: 'eTP=Local without local endpoints: pod to LB IP (short-circuit)', packet: fwd('10.0.0.2', '1.2.3.4', 80), verdict: 'ACCEPT', endpoints: { '10.180.0.2:80': 1 }, masquerade: 'never' },
  { name: 'eTP=Local without local endpoints: pod to node port', packet: fwd('10.0.0.2', NODE_IP, 3001), verdict: 'ACCEPT', endpoints: { '10.180.0.2:80': 1 }, masquerade: 'never' },
  { name: 'eTP=Local: node address as source, mark for masquerade', packet: fwd(NODE_IP, '192.168.99.22', 80), verdict: 'ACCEPT', endpoints: { '10.180.0.2:80': 1 }, masquerade: 'always' },
  { name: 'eTP=Local with a local endpoint: external to node port', packet: fwd(EXTERNAL, NODE_IP, 3008), verdict: 'ACCEPT', endpoints: { '10.180.0.10:80': 1 }, masquerade: 'never' },
  { name: 'eTP=Local with a local endpoint: pod to cluster IP', packet: fwd('10.0.0.2', '172.30.0.48', 80), verdict: 'ACCEPT', endpoints: { '10.180.0.10:80': 0.5, '10.180.1.10:80': 0.5 }, masquerade: 'never' },
  { name: 'eTP=Local with a local endpoint: host process to its node port', packet: local(NODE_IP, 3008), verdict: 'ACCEPT', endpoints: { '10.180.0.10:80': 0.5, '10.180.1.10:80': 0.5 }, masquerade: 'always' },
  { name: 'no service at all', packet: fwd('10.0.0.2', '10.0.0.3', 80), verdict: 'ACCEPT', endpoints: {}, masquerade: 'never' },
];

t.test('behaviour table on both forms', async (t) => {
  for (const [form, rs] of FORMS) {
    for (const c of CASES) {
      const r = trace(c.packet, rs);
      t.equal(r.verdict, c.verdict, `${form}: ${c.name}: verdict`);
      if (c.endpoints !== undefined) t.same(endpointMap(r), c.endpoints, `${form}: ${c.name}: endpoints`);
      if (c.masquerade !== undefined) t.equal(r.masquerade, c.masquerade, `${form}: ${c.name}: masquerade`);
      t.ok(close(totalProbability(r), 1), `${form}: ${c.name}: probabilities sum to 1`);
    }
  }
});

t.test('both forms trace identically, step by step', async (t) => {
  const project = (r: TraceResult): unknown => ({
    verdict: r.verdict,
    masquerade: r.masquerade,
    endpoints: endpointMap(r),
    paths: r.paths.map((p) => ({
      probability: Math.round(p.probability * 1e9),
      verdict: p.verdict, dnat: p.dnat, masquerade: p.masquerade, mark: p.mark,
      steps: p.steps.map((s) => `${s.table}/${s.chain} "${s.comment ?? ''}" ${s.action} ${(s.notes ?? []).join(' | ')}`),
    })),
  });
  for (const c of CASES) t.same(project(trace(c.packet, listedRules)), project(trace(c.packet, inputRules)), c.name);
});

t.test('ClusterIP: hooks in priority order, vmap lookup, numgen, DNAT, masquerade chain', async (t) => {
  const p = onlyPath(trace(fwd('10.0.0.2', '172.30.0.41', 80)));
  t.same(p.steps.map((s) => `${s.chain}: ${s.action}`), [
    'filter-prerouting: jump firewall-check',
    'nat-prerouting: jump services',
    'services: goto service-ULMVA6XW-ns1/svc1/tcp/p80',
    'service-ULMVA6XW-ns1/svc1/tcp/p80: goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80',
    'endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80: dnat to 10.180.0.1:80',
    'filter-forward: jump service-endpoints-check',
    'filter-forward: jump cluster-ips-check',
    'nat-postrouting: jump masquerading',
    'masquerading: return',
  ]);
  t.same(p.steps[2]?.notes, ['@service-ips: 172.30.0.41 . tcp . 80 → goto service-ULMVA6XW-ns1/svc1/tcp/p80']);
  t.same(p.steps[3]?.notes, ['numgen random mod 1 → 0 (probability 1/1)']);
  t.same(p.dnat, { address: '10.180.0.1', port: 80 });
  t.equal(p.mark, 0);

  const off = onlyPath(trace(fwd(EXTERNAL, '172.30.0.41', 80)));
  t.ok(off.steps.some((s) => s.chain === 'mark-for-masquerade' && s.action === 'mark set 0x4000'), 'marked for masquerade');
  t.same(off.steps.slice(-3).map((s) => `${s.chain}: ${s.action}`), [
    'nat-postrouting: jump masquerading', 'masquerading: mark set 0x0', 'masquerading: masquerade fully-random',
  ], 'the masquerading chain clears the mark and masquerades');
  t.equal(off.mark, 0);
  t.equal(off.masquerade, true);

  const hostProcess = onlyPath(trace(local('172.30.0.41', 80)));
  t.same(hostProcess.steps.filter((s) => s.chain.startsWith('filter') || s.chain.startsWith('nat')).map((s) => s.chain), [
    'filter-output', 'filter-output', 'nat-output', 'filter-output-post-dnat', 'nat-postrouting',
  ], 'output hook: filter (-110), nat (-100), filter-post-dnat (-90), then postrouting');
});

t.test('numgen forks: two and three endpoints, each branch shows its choice', async (t) => {
  const two = trace(fwd('10.0.0.2', '172.30.0.44', 80));
  t.equal(two.paths.length, 2);
  t.same(two.paths.map((p) => p.probability), [0.5, 0.5]);
  t.same(pathTo(two, '10.180.0.5').steps.find((s) => s.chain.startsWith('service-'))?.notes, ['numgen random mod 2 → 1 (probability 1/2)']);
  const three = trace(fwd('10.0.0.2', '172.30.0.47', 53, 'udp'));
  t.equal(three.paths.length, 3);
  for (const p of three.paths) t.ok(close(p.probability, 1 / 3), `${p.dnat?.address ?? '?'} has 1/3`);
  t.same(three.paths.map((p) => p.dnat?.port), [5353, 5353, 5353]);
  t.same(pathTo(three, '10.180.0.9').steps.find((s) => s.action.startsWith('goto endpoint'))?.action,
    'goto endpoint-7CCCCCCC-ns7/svc7/udp/dns__10.180.0.9/5353');
});

t.test('no endpoints and unallocated ClusterIPs: who rejects and who drops', async (t) => {
  for (const [form, rs] of FORMS) {
    const none = onlyPath(trace(fwd('10.0.0.2', '172.30.0.46', 80), rs));
    const vmapStep = none.steps.find((s) => s.chain === 'service-endpoints-check');
    t.same([vmapStep?.action, vmapStep?.comment], ['goto reject-chain', 'ns6/svc6:p80'], `${form}: the element's comment names the service`);
    t.same([lastStep(none).chain, lastStep(none).action], ['reject-chain', 'reject'], `${form}: rejected by reject-chain`);
    t.notOk(none.steps.some((s) => s.chain === 'cluster-ips-check'), `${form}: rejected before cluster-ips-check`);

    const wrongPort = onlyPath(trace(fwd('10.0.0.2', '172.30.0.41', 443), rs));
    t.same([lastStep(wrongPort).chain, lastStep(wrongPort).action, lastStep(wrongPort).comment],
      ['cluster-ips-check', 'reject', 'Reject traffic to invalid ports of ClusterIPs'], `${form}: invalid port`);
    const unallocated = onlyPath(trace(fwd('10.0.0.2', '172.30.0.50', 80), rs));
    t.same([lastStep(unallocated).action, lastStep(unallocated).comment], ['drop', 'Drop traffic to unallocated ClusterIPs'], `${form}: unallocated`);
    t.equal(trace(fwd('10.0.0.2', '172.31.0.50', 80), rs).verdict, 'ACCEPT', `${form}: outside the service CIDR`);
  }
});

t.test('LoadBalancer source ranges: firewall-check before DNAT', async (t) => {
  const blocked = onlyPath(trace(fwd(EXTERNAL_BLOCKED, '5.6.7.8', 80)));
  t.same(blocked.steps.map((s) => `${s.chain}: ${s.action}`), [
    'filter-prerouting: jump firewall-check',
    'firewall-check: goto firewall-HVFWP5L3-ns5/svc5/tcp/p80',
    'firewall-HVFWP5L3-ns5/svc5/tcp/p80: drop',
  ]);
  t.equal(blocked.steps[1]?.comment, 'ns5/svc5:p80');
  t.equal(blocked.dnat, undefined);
  const allowed = onlyPath(trace(fwd(EXTERNAL, '5.6.7.8', 80)));
  t.ok(allowed.steps.some((s) => s.chain === 'firewall-check'), 'allowed traffic goes through the firewall chain too');
  t.equal(allowed.verdict, 'ACCEPT');
});

t.test('session affinity: the first packet is not in the set, the endpoint chain records it', async (t) => {
  for (const [form, rs] of FORMS) {
    const p = onlyPath(trace(fwd('10.0.0.2', '172.30.0.45', 80), rs));
    const lookup = p.steps.find((s) => s.chain === 'service-HVFWP5L3-ns5/svc5/tcp/p80' && s.action === 'no match');
    t.match(lookup?.notes?.[0], /@affinity-GTK6MW7G-ns5\/svc5\/tcp\/p80__10\.180\.0\.3\/80 is filled by the packet path: first packet, 10\.0\.0\.2 not recorded yet$/,
      `${form}: affinity lookup noted`);
    const update = p.steps.find((s) => s.action.startsWith('update'));
    t.equal(update?.action, 'update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { 10.0.0.2 }', `${form}: set update`);
    t.same(p.dnat, { address: '10.180.0.3', port: 80 });
  }

  const live = parseNftRuleset(H_LISTED);
  const sticky = traceNftPacket(live, fwd('10.0.0.2', '10.9.9.9', 80), OPTS);
  t.equal(sticky.verdict, 'ACCEPT', 'a live affinity element does not change the first-packet trace');
  t.match(sticky.paths[0]?.steps[0]?.notes?.[0], /the listed set holds 10\.0\.0\.2: a client with live affinity would match/);
  t.equal(sticky.paths[0]?.steps[0]?.comment, 'has affinity');
  t.equal(traceNftPacket(live, fwd('10.0.0.3', '10.9.9.9', 80), OPTS).paths[0]?.steps[0]?.notes?.[0]?.includes('listed set holds'), false);

  const path = parseNftRuleset(`add table ip t
add chain ip t c { type filter hook forward priority 0 ; }
add set ip t s { type ipv4_addr ; flags dynamic ; }
add rule ip t c ip saddr @s drop
add rule ip t c update @s { ip saddr }
add rule ip t c ip saddr @s reject
`);
  const r = traceNftPacket(path, fwd('10.0.0.2', '10.9.9.9', 80), OPTS);
  t.equal(r.verdict, 'REJECT', 'an update earlier on the path is seen by a later lookup');
  t.match(lastStep(onlyPath(r)).notes?.[0], /10\.0\.0\.2 was recorded earlier on this path/);
});

t.test('externalTrafficPolicy=Local', async (t) => {
  const dropped = onlyPath(trace(fwd(EXTERNAL, '1.2.3.4', 80)));
  t.same(dropped.steps.map((s) => `${s.chain}: ${s.action}`), [
    'filter-prerouting: jump firewall-check',
    'nat-prerouting: jump services',
    'services: goto external-42NFTM6N-ns2/svc2/tcp/p80',
    'filter-forward: jump service-endpoints-check',
    'service-endpoints-check: drop',
  ], 'no local endpoint: not DNATed, then dropped by @no-endpoint-services');
  t.equal(lastStep(dropped).comment, 'ns2/svc2:p80');
  const nodePort = onlyPath(trace(fwd(EXTERNAL, NODE_IP, 3001)));
  t.same([lastStep(nodePort).chain, lastStep(nodePort).action], ['nodeport-endpoints-check', 'drop'], 'node port: dropped in the input hook');

  const pod = onlyPath(trace(fwd('10.0.0.2', '1.2.3.4', 80)));
  t.ok(pod.steps.some((s) => s.comment === 'short-circuit pod traffic' && s.action === 'goto service-42NFTM6N-ns2/svc2/tcp/p80'));

  const kept = onlyPath(trace(fwd(EXTERNAL, NODE_IP, 3008)));
  t.ok(kept.steps.some((s) => s.action === 'goto local-8SVCSVCS-ns8/svc8/tcp/p80'), 'external traffic goes to the local-endpoints chain');
  t.equal(kept.masquerade, false, 'source preserved');

  const host = trace(local(NODE_IP, 3008));
  t.ok(host.paths.every((p) => p.steps.some((s) => s.comment === 'masquerade local traffic')), 'fib saddr type local');
  t.ok(host.paths.every((p) => p.steps.some((s) => s.comment === 'short-circuit local traffic')));

  // What upstream's ruleset does with a host process and an external IP of such a service:
  // filter-output (priority -110) consults @no-endpoint-services before nat-output can short-circuit it.
  const hostToExternalIp = onlyPath(trace(local('192.168.99.22', 80)));
  t.same([hostToExternalIp.verdict, lastStep(hostToExternalIp).chain], ['DROP', 'service-endpoints-check']);
});

t.test('IPv6 ruleset (upstream TestTracePacketV6), both forms', async (t) => {
  const forms = [['input', parseNftRuleset(V6_INPUT)], ['listed', parseNftRuleset(V6_LISTED)]] as const;
  const both = { '[fd00:10:180::1]:80': 0.5, '[fd00:10:180::2:1]:80': 0.5 };
  for (const [form, rs] of forms) {
    const pod = trace(fwd('fd00:10::2', 'fd00:172:30::41', 80), rs);
    t.same([endpointMap(pod), pod.masquerade], [both, 'never'], `${form}: pod to cluster IP`);
    const ext = trace(fwd('2600:5200::1', '2001:db8::1', 3001), rs);
    t.same([endpointMap(ext), ext.masquerade], [both, 'always'], `${form}: external to node port`);
    const node = trace(local('2001:db8::1', 3001, 'tcp', '2001:db8::1'), rs);
    t.same([endpointMap(node), node.masquerade], [both, 'always'], `${form}: node to node port`);
    t.equal(trace(fwd('fd00:10::2', 'fd00:10:96::99', 80), rs).verdict, 'DROP', `${form}: unallocated`);
    t.equal(trace(fwd('fd00:10::2', 'fd00:172:30::41', 81), rs).verdict, 'REJECT', `${form}: wrong port`);
    t.same(trace(fwd('10.0.0.2', '172.30.0.41', 80), rs).endpoints, [], `${form}: an ip6 table does not see IPv4 packets`);
  }
  t.same(trace(fwd('fd00:10::2', 'fd00:172:30::41', 80)).endpoints, [], 'an ip table does not see IPv6 packets');
  const first = traceNftPacket(forms[0][1], local('2001:db8::1', 3001, 'tcp', '2001:db8::1'), OPTS).paths[0];
  t.same(first?.dnat, { address: 'fd00:10:180::1', port: 80 });
  t.equal(first?.steps.find((s) => s.action.startsWith('dnat'))?.action, 'dnat to [fd00:10:180::1]:80', 'IPv6 endpoint in brackets');
});

function rules(text: string): NftRuleset {
  return parseNftRuleset(text);
}

t.test('accept ends one base chain only; drop ends the trip; chains run by priority across tables', async (t) => {
  const rs = rules(`table ip late {
	chain filt {
		type filter hook forward priority 10; policy accept;
		tcp dport 22 drop
	}
}
table ip early {
	chain filt {
		type filter hook forward priority -10; policy accept;
		meta mark set 0x1
		accept
	}
}
table inet both {
	chain filt {
		type filter hook forward priority 0; policy accept;
		meta mark 0x1 meta mark set 0x2
		meta nfproto ipv6 meta mark set 0x6
	}
}
`);
  const r = onlyPath(traceNftPacket(rs, fwd('10.0.0.1', '10.0.0.2', 22), OPTS));
  t.equal(r.verdict, 'DROP', 'accept in one table does not save the packet from another');
  t.same(r.steps.map((s) => `${s.table}/${s.chain}: ${s.action}`), [
    'ip early/filt: mark set 0x1', 'ip early/filt: accept', 'inet both/filt: mark set 0x2', 'ip late/filt: drop',
  ], 'priority -10, then 0 (inet), then 10');
  t.equal(traceNftPacket(rs, fwd('10.0.0.1', '10.0.0.2', 23), OPTS).paths[0]?.mark, 2);
  const v6 = onlyPath(traceNftPacket(rs, fwd('fd00::1', 'fd00::2', 22), OPTS));
  t.same([v6.verdict, v6.mark, v6.steps.map((s) => s.table)], ['ACCEPT', 6, ['inet both']], 'an IPv6 packet only meets the inet table');
});

t.test('jump returns to the caller, goto to the caller of the caller, base chain policy at the bottom', async (t) => {
  const text = `add table ip f
add chain ip f filt { type filter hook forward priority 0 ; policy accept ; }
add chain ip f a
add chain ip f b
add rule ip f filt tcp dport 3 goto b
add rule ip f filt jump a
add rule ip f filt drop
add rule ip f a tcp dport 1 jump b
add rule ip f a tcp dport 2 goto b
add rule ip f a reject
add rule ip f b return
`;
  const rs = rules(text);
  const steps = (port: number): string[] => (traceNftPacket(rs, fwd('1.1.1.1', '2.2.2.2', port), OPTS).paths[0]?.steps ?? []).map((s) => `${s.chain} ${s.action}`);
  t.same(steps(1), ['filt jump a', 'a jump b', 'b return', 'a reject']);
  t.same(steps(2), ['filt jump a', 'a goto b', 'b return', 'filt drop']);
  t.equal(traceNftPacket(rs, fwd('1.1.1.1', '2.2.2.2', 3), OPTS).verdict, 'ACCEPT', 'goto from the base chain, return: policy accept');
  const dropPolicy = rules(text.replace('policy accept', 'policy drop'));
  const policy = onlyPath(traceNftPacket(dropPolicy, fwd('1.1.1.1', '2.2.2.2', 3), OPTS));
  t.equal(policy.verdict, 'DROP');
  t.same(lastStep(policy), { table: 'ip f', chain: 'filt', rule: '(policy DROP)', action: 'drop' });
  t.match(formatNftTrace(traceNftPacket(dropPolicy, fwd('1.1.1.1', '2.2.2.2', 3), OPTS)), /Dropped by the DROP policy of ip f\/filt/);
});

t.test('jump loops are cut at the kernel jump stack depth', async (t) => {
  const rs = rules(`add table ip f
add chain ip f filt { type filter hook forward priority 0 ; }
add chain ip f a
add chain ip f b
add chain ip f c
add rule ip f filt tcp dport 1 jump a
add rule ip f filt tcp dport 2 jump c
add rule ip f a jump b
add rule ip f b jump a
add rule ip f c goto c
`);
  const r = onlyPath(traceNftPacket(rs, fwd('1.1.1.1', '2.2.2.2', 1), OPTS));
  t.equal(r.verdict, 'DROP');
  t.equal(lastStep(r).action, 'drop (loop: jump depth limit 16 exceeded)');
  t.equal(r.steps.length, 17, 'the base chain jump plus 15 nested jumps, then the refused one');
  t.match(lastStep(onlyPath(traceNftPacket(rs, fwd('1.1.1.1', '2.2.2.2', 2), OPTS))).action, /loop: more than 10000 jumps/);
});

t.test('NAT: one binding per hook and manip type, across tables; loopback skips nat', async (t) => {
  const rs = rules(`table ip a {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 80 dnat to 10.0.0.1:8080
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		ip daddr 10.0.0.1 snat to 192.168.0.2
	}
}
table ip b {
	chain pre {
		type nat hook prerouting priority 10; policy accept;
		dnat to 10.0.0.99
	}
	chain check {
		type filter hook prerouting priority 20; policy accept;
		ct status dnat ct original ip daddr 5.5.5.5 meta l4proto tcp ct original proto-dst 80 meta mark set 0x7
	}
	chain post {
		type nat hook postrouting priority 200; policy accept;
		masquerade
	}
}
`);
  const r = onlyPath(traceNftPacket(rs, fwd('1.1.1.1', '5.5.5.5', 80), OPTS));
  t.same(r.dnat, { address: '10.0.0.1', port: 8080 }, 'the first nat chain binds, the later one is skipped');
  t.notOk(r.steps.some((s) => s.table === 'ip b' && s.chain === 'pre'), 'table b nat prerouting skipped');
  t.ok(r.steps.some((s) => s.chain === 'check' && s.action === 'mark set 0x7'), 'ct status dnat and the original tuple after DNAT');
  t.same(r.steps.filter((s) => s.chain === 'post').map((s) => `${s.table} ${s.action}`), ['ip a snat to 192.168.0.2'], 'snat binds, masquerade skipped');
  t.equal(r.masquerade, true);
  const other = onlyPath(traceNftPacket(rs, fwd('1.1.1.1', '5.5.5.5', 81), OPTS));
  t.same(other.dnat, { address: '10.0.0.99', port: 81 }, 'no binding in table a: table b binds, port kept');
  t.same(other.steps.filter((s) => s.chain === 'post').map((s) => `${s.table} ${s.action}`), ['ip b masquerade']);

  const lo = rules(`table ip t {
	chain out {
		type nat hook output priority -100; policy accept;
		tcp dport 80 dnat to 192.168.0.2:8080
	}
	chain pre {
		type nat hook prerouting priority -100; policy accept;
		drop
	}
	chain in {
		type filter hook input priority 0; policy accept;
		iifname "lo" tcp dport 8080 accept
		drop
	}
}
`);
  const looped = onlyPath(traceNftPacket(lo, local('192.168.0.2', 80), OPTS));
  t.equal(looped.verdict, 'ACCEPT', 'back in through lo: nat prerouting is not consulted, iifname is lo');
  t.same(looped.steps.map((s) => `${s.chain} ${s.action}`), ['out dnat to 192.168.0.2:8080', 'in accept']);
});

t.test('redirect, inet tables with dnat ip / dnat ip6', async (t) => {
  const rs = rules(`table inet t {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 1.2.3.4 meta l4proto tcp dnat ip to 10.0.0.1:80
		ip6 daddr fd00::1 tcp dport 80 dnat ip6 to [fd00::2]:80
		meta l4proto tcp redirect to :8080
	}
}
`);
  t.same(traceNftPacket(rs, fwd('10.9.9.9', '1.2.3.4', 80), OPTS).endpoints, [{ address: '10.0.0.1', port: 80, probability: 1 }]);
  t.same(traceNftPacket(rs, fwd('fd00::9', 'fd00::1', 80), OPTS).endpoints, [{ address: 'fd00::2', port: 80, probability: 1 }]);
  const redirected = onlyPath(traceNftPacket(rs, fwd('10.9.9.9', '9.9.9.9', 80), OPTS));
  t.same(redirected.dnat, { address: '192.168.0.2', port: 8080 }, 'redirect to this host, first local address');
  t.same(traceNftPacket(rs, fwd('10.9.9.9', '9.9.9.9', 80, 'udp'), OPTS).endpoints, [], 'meta l4proto tcp');
});

t.test('numgen: offsets, missing elements and comparisons give MIXED verdicts', async (t) => {
  const rs = rules(`table ip t {
	chain filt {
		type filter hook forward priority 0; policy accept;
		tcp dport 1 numgen random mod 4 offset 1 vmap { 1 : drop, 2-3 : goto rej }
		tcp dport 2 numgen inc mod 2 == 0 drop
		tcp dport 3 numgen random mod 2 vmap { 0 : jump sub, 1 : jump sub }
	}
	chain sub {
		numgen random mod 2 0 drop
	}
	chain rej {
		reject
	}
}
`);
  const a = traceNftPacket(rs, fwd('1.1.1.1', '2.2.2.2', 1), OPTS);
  t.equal(a.verdict, 'MIXED');
  t.same(a.paths.map((p) => [p.verdict, p.probability]), [['DROP', 0.25], ['REJECT', 0.25], ['REJECT', 0.25], ['ACCEPT', 0.25]],
    'value 4 has no element: the rule does not match');
  t.match(formatNftTrace(a), /Verdict: MIXED \(4 paths\)\n {2}DROP 25%, REJECT 50%, ACCEPT 25%/);
  const b = traceNftPacket(rs, fwd('1.1.1.1', '2.2.2.2', 2), OPTS);
  t.same(b.paths.map((p) => [p.verdict, p.probability]), [['DROP', 0.5], ['ACCEPT', 0.5]]);
  const c = traceNftPacket(rs, fwd('1.1.1.1', '2.2.2.2', 3), OPTS);
  t.same(c.paths.map((p) => [p.verdict, p.probability]), [['DROP', 0.25], ['ACCEPT', 0.25], ['DROP', 0.25], ['ACCEPT', 0.25]], 'nested forks');
  t.ok(close(totalProbability(c), 1));
  t.equal(traceNftPacket(rs, fwd('1.1.1.1', '2.2.2.2', 4), OPTS).paths.length, 1, 'no fork when an earlier match fails');
});

t.test('marks: nft list arithmetic, ct mark, masked comparisons', async (t) => {
  const rs = rules(`table ip t {
	chain pre {
		type filter hook prerouting priority 0; policy accept;
		meta mark set 0x000000ff
		meta mark set meta mark & 0x0000001e
		meta mark set meta mark ^ 0x00000003
		mark set mark or 0x100
		ct mark set meta mark
		meta mark set meta mark << 0x00000001
		ct mark 0x11d meta mark & 0x0000ff00 == 0x00000200 meta mark 0x23a accept
		drop
	}
}
`);
  const p = onlyPath(traceNftPacket(rs, fwd('1.1.1.1', '2.2.2.2', 80), OPTS));
  t.same(p.steps.map((s) => s.action), ['mark set 0xff', 'mark set 0x1e', 'mark set 0x1d', 'mark set 0x11d', 'ct mark set 0x11d', 'mark set 0x23a', 'accept']);
  t.equal(p.verdict, 'ACCEPT');
  t.equal(p.mark, 0x23a);
});

t.test('matches: sets with intervals, anonymous sets, ranges, flags, families, ports', async (t) => {
  const rs = rules(`add table ip t
add set ip t ranges { type ipv4_addr ; flags interval ; }
add element ip t ranges { 10.0.0.0/8, 192.168.1.1-192.168.1.5 }
add set ip t svc { type ipv4_addr . inet_proto . inet_service ; }
add element ip t svc { 172.30.0.1 . udp . 53 }
add chain ip t filt { type filter hook forward priority 0 ; }
add rule ip t filt ip saddr @ranges tcp dport 1 drop
add rule ip t filt ip saddr != { 1.1.1.1, 2.2.2.0/24 } tcp dport 2 drop
add rule ip t filt th dport 30000-32767 drop
add rule ip t filt ip daddr . meta l4proto . th dport @svc drop
add rule ip t filt ct state established,related accept
add rule ip t filt ct state invalid drop
add rule ip t filt tcp flags syn / syn,ack tcp dport 5 reject
add rule ip t filt meta l4proto { tcp, udp } th dport < 10 th dport >= 8 drop
add rule ip t filt ip protocol sctp reject
`);
  const v = (src: string, dst: string, port: number, proto: TracePacket['proto'] = 'tcp'): string => traceNftPacket(rs, fwd(src, dst, port, proto), OPTS).verdict;
  t.equal(v('10.1.1.1', '2.2.2.2', 1), 'DROP', 'prefix element');
  t.equal(v('192.168.1.3', '2.2.2.2', 1), 'DROP', 'range element');
  t.equal(v('192.168.1.5', '2.2.2.2', 1), 'DROP', 'the end of a range is in it');
  t.equal(v('192.168.1.6', '2.2.2.2', 1), 'ACCEPT', 'outside the range');
  t.equal(v('3.3.3.3', '2.2.2.2', 2), 'DROP', '!= anonymous set');
  t.equal(v('2.2.2.9', '2.2.2.2', 2), 'ACCEPT', 'in the anonymous set');
  t.equal(v('3.3.3.3', '2.2.2.2', 32767, 'udp'), 'DROP', 'port range with th, end included');
  t.equal(v('3.3.3.3', '2.2.2.2', 29999, 'udp'), 'ACCEPT', 'below the port range');
  t.equal(v('3.3.3.3', '172.30.0.1', 53, 'udp'), 'DROP', 'concatenated set lookup');
  t.equal(v('3.3.3.3', '172.30.0.1', 53, 'tcp'), 'ACCEPT', 'protocol is part of the key');
  t.equal(v('3.3.3.3', '2.2.2.2', 5), 'REJECT', 'first packet: syn without ack; ct state is new');
  t.equal(v('3.3.3.3', '2.2.2.2', 9, 'udp'), 'DROP', 'orderings');
  t.equal(v('3.3.3.3', '2.2.2.2', 10, 'udp'), 'ACCEPT');
  t.equal(v('3.3.3.3', '2.2.2.2', 4, 'sctp'), 'REJECT', 'ip protocol');
  t.equal(v('3.3.3.3', '2.2.2.2', 5, 'udp'), 'ACCEPT', 'tcp flags need tcp');
});

t.test('what cannot be known is an assumption, recorded in the steps', async (t) => {
  const rs = rules(`table ip t {
	chain filt {
		type filter hook forward priority 0; policy accept;
		iifname "eth0" drop
		meta skuid 0 drop
		jhash ip saddr mod 2 vmap { 0 : drop }
		limit rate over 10/second drop
		tcp sport 1000 drop
		oifname != "eth1" tcp dport 80 reject
		limit rate 10/second counter packets 0 bytes 0 accept
	}
}
`);
  const p = onlyPath(traceNftPacket(rs, fwd('1.1.1.1', '2.2.2.2', 80), OPTS));
  t.equal(p.verdict, 'REJECT', 'the negated unknown interface is assumed to match');
  t.same(p.steps.map((s) => s.action), ['no match', 'no match', 'no match', 'no match', 'no match', 'reject']);
  t.same(p.steps.map((s) => s.notes?.[0]), [
    'iifname "eth0": the input interface cannot be known, assumed no match',
    'meta skuid 0: meta skuid is not modelled, assumed no match',
    'jhash ip saddr mod 2 vmap { 0 : drop }: jhash ip saddr mod 2 is not modelled, assumed no match',
    'limit rate over 10/second: not modelled, assumed no match',
    'tcp sport 1000: source port not given, assumed no match',
    'oifname != "eth1": the output interface cannot be known, assumed match',
  ]);
  t.equal(traceNftPacket(rs, { ...fwd('1.1.1.1', '2.2.2.2', 80), sport: 1000 }, OPTS).verdict, 'DROP', 'a given source port is matched');

  // iptables-nft rules as nft 1.0.6 lists them (they cannot be loaded back with nft -f).
  const compat = rules(`# Warning: table ip filter is managed by iptables-nft, do not touch!
table ip filter {
	chain FORWARD {
		type filter hook forward priority filter; policy accept;
		xt match physdev counter packets 0 bytes 0 drop
	}
}
# Warning: table ip nat is managed by iptables-nft, do not touch!
table ip nat {
	chain POSTROUTING {
		type nat hook postrouting priority srcnat; policy accept;
		 counter packets 0 bytes 0 masquerade fully-random
	}
}
`);
  const x = onlyPath(traceNftPacket(compat, fwd('1.1.1.1', '2.2.2.2', 80), OPTS));
  t.same([x.verdict, x.masquerade, x.steps.map((s) => `${s.table}/${s.chain}: ${s.action}`)],
    ['ACCEPT', true, ['ip filter/FORWARD: no match', 'ip nat/POSTROUTING: masquerade fully-random']]);
  t.same(x.steps[0]?.notes, ['xt match physdev: not modelled, assumed no match']);
  const other = onlyPath(traceNftPacket(rs, fwd('1.1.1.1', '2.2.2.2', 81), OPTS));
  t.same([other.verdict, lastStep(other).action, lastStep(other).notes], ['ACCEPT', 'accept', ['limit rate 10/second: assumed not exceeded']]);
});

t.test('commands: insert, add at a handle or index, replace, delete by handle, flush and delete table', async (t) => {
  const base = `add table ip t
add chain ip t c { type filter hook forward priority 0 ; }
add rule ip t c tcp dport 1 accept
add rule ip t c tcp dport 2 accept
`;
  const names = (rs: NftRuleset): string[] => (rs.tables.get('ip t')?.chains.get('c')?.rules ?? []).map((r) => r.raw);
  t.same(names(rules(`${base}insert rule ip t c tcp dport 0 accept\n`)), ['tcp dport 0 accept', 'tcp dport 1 accept', 'tcp dport 2 accept']);
  t.same(names(rules(`${base}add rule ip t c index 0 tcp dport 9 drop\ninsert rule ip t c index 0 tcp dport 8 drop\n`)),
    ['tcp dport 8 drop', 'tcp dport 1 accept', 'tcp dport 9 drop', 'tcp dport 2 accept']);
  const listed = rules(H_LISTED);
  const c = listed.tables.get('ip t')?.chains.get('c');
  t.same(c?.rules.map((r) => r.handle), [3, 4, 5, 6], 'handles from nft -a list');
  t.equal(c?.base?.policy, 'drop');
  t.same(names(rules(`${H_LISTED}\ndelete rule ip t c handle 4\nadd rule ip t c handle 3 tcp dport 7 drop\ninsert rule ip t c position 3 tcp dport 6 drop\nreplace rule ip t c handle 6 tcp dport 9 drop\n`)),
    ['tcp dport 6 drop', 'tcp dport 1 accept', 'tcp dport 7 drop', 'ip saddr @aff drop comment "has affinity"', 'tcp dport 9 drop']);
  t.same(names(rules(`${base}flush table ip t\nadd rule ip t c drop\n`)), ['drop']);
  t.equal(rules(`${base}delete table ip t\n`).tables.size, 0);
  t.equal(rules(`${base}add table ip6 u\nflush ruleset ip\n`).tables.size, 1);
  t.equal(rules(`${base}flush ruleset\n`).tables.size, 0);
  t.equal(rules(`add table t\nadd chain t c\n`).tables.get('ip t')?.chains.has('c'), true, 'the family defaults to ip');
  t.equal(rules(`${base}list ruleset\n# a comment\nadd chain ip t d ; add rule ip t d return\n`).tables.get('ip t')?.chains.get('d')?.rules.length, 1,
    'list commands are skipped, ";" separates commands');
});

function parseError(text: string): NftParseError {
  try {
    parseNftRuleset(text);
  } catch (err) {
    if (err instanceof NftParseError) return err;
    throw err;
  }
  throw new Error('expected a parse error');
}

t.test('what nft would refuse is a parse error with the line number and text', async (t) => {
  const head = 'add table ip t\nadd chain ip t c { type filter hook forward priority 0 ; }\n';
  const e = parseError(`${head}\nadd rule ip t c tcp dport 80 jump nowhere\n`);
  t.equal(e.line, 4);
  t.equal(e.text, 'add rule ip t c tcp dport 80 jump nowhere');
  t.match(e.message, /line 4: rule in chain c: chain nowhere does not exist in table ip t: add rule ip t c tcp dport 80 jump nowhere/);
  t.match(parseError(`${head}add rule ip t c ip daddr @nope drop\n`).message, /line 3: set @nope does not exist/);
  t.match(parseError(`${head}add rule ip t c ip daddr 10.0.0.300 drop\n`).message, /line 3: invalid IP address "10.0.0.300"/);
  t.match(parseError(`${head}add rule ip t c ip daddr fd00::1 drop\n`).message, /line 3: "fd00::1" is not an IPv4 address/);
  t.match(parseError(`${head}add rule ip t c th dport 90-80 drop\n`).message, /line 3: invalid range "90-80"/);
  t.match(parseError(`${head}add rule ip t c ct state bogus drop\n`).message, /line 3: unknown ct state "bogus"/);
  t.match(parseError(`${head}add rule ip t c comment "oops drop\n`).message, /line 3: unterminated string/);
  t.match(parseError(`${head}add rule ip t nope drop\n`).message, /line 3: chain nope does not exist in table ip t/);
  t.match(parseError(`add rule ip t c drop\n`).message, /line 1: table ip t does not exist/);
  t.match(parseError(`${head}bogus\n`).message, /line 3: unknown command "bogus"/);
  t.match(parseError(`${head}add rule ip t c drop\ndelete chain ip t c\n`).message, /line 4: cannot delete chain c: it still has 1 rule/);
  t.match(parseError(`${head}add map ip t m { type ipv4_addr : verdict ; }\nadd element ip t m { 1.2.3.4 }\n`).message, /line 4: map element "1.2.3.4" has no value/);
  t.match(parseError(`${head}add set ip t s { type ipv4_addr . inet_service ; }\nadd element ip t s { 1.2.3.4 }\n`).message,
    /line 4: element "1.2.3.4" has 1 key component\(s\), the set's type has 2/);
  t.match(parseError(`${head}add set ip t s { type ipv4_addr ; }\ndelete element ip t s { 1.2.3.4 }\n`).message, /line 4: element 1.2.3.4 is not in s/);
  t.match(parseError(`${head}add set ip t s { type ipv4_addr ; }\nadd rule ip t c ip daddr . tcp dport @s drop\n`).message,
    /line 4: @s has 1 key component\(s\), the expression has 2/);
  t.match(parseError('add table ip t\nadd chain ip t c { type filter hook forward priority bogus ; }\n').message, /line 2: invalid priority "bogus"/);
  t.match(parseError('add table ip t\ncreate table ip t\n').message, /line 2: table ip t already exists/);
  t.match(parseError(`${head}add rule ip t c dnat to nowhere:80\n`).message, /line 3: invalid IP address "nowhere"/);
  t.match(parseError(`${head}add rule ip t c\n`).message, /line 3: empty rule/);
});

t.test('formatNftTrace explains endpoints, masquerade and who dropped', async (t) => {
  const three = formatNftTrace(trace(fwd(EXTERNAL, '172.30.0.47', 53, 'udp')));
  t.match(three, /^Verdict: ACCEPT \(3 paths\)\nEndpoints:\n {2}10\.180\.0\.7:5353 {2}33\.3%/);
  t.match(three, /Masquerade: always/);
  t.match(three, /\[ip kube-proxy\/services\] ip daddr \. meta l4proto \. th dport vmap @service-ips → goto service-7SVCSVCS-ns7\/svc7\/udp\/dns/);
  t.match(three, /note: numgen random mod 3 → 2 \(probability 1\/3\)/);
  const blocked = formatNftTrace(trace(fwd(EXTERNAL_BLOCKED, '5.6.7.8', 80)));
  t.match(blocked, /Dropped by ip kube-proxy\/firewall-HVFWP5L3-ns5\/svc5\/tcp\/p80: ip saddr != \{ 203\.0\.113\.0\/25 \} drop/);
  const rejected = formatNftTrace(trace(fwd('10.0.0.2', '172.30.0.41', 443)));
  t.match(rejected, /Rejected by ip kube-proxy\/cluster-ips-check: ip daddr @cluster-ips reject .*\(comment: "Reject traffic to invalid ports of ClusterIPs"\)/);
  const hairpin = formatNftTrace(trace(fwd('10.180.0.4', '172.30.0.44', 80)));
  t.match(hairpin, /Masquerade: on some accepted paths only/);
  t.match(hairpin, /Path 1 of 2 \(50%\): ACCEPT, DNAT to 10\.180\.0\.4:80, masquerade: yes/);
});

t.test('invalid packets and options are refused', async (t) => {
  t.throws(() => trace(fwd('not-an-ip', '172.30.0.41', 80)), /invalid source address "not-an-ip"/);
  t.throws(() => trace(fwd('10.0.0.1', 'fd00::1', 80)), /not the same IP family/);
  t.throws(() => trace(fwd('10.0.0.1', '172.30.0.41', 70000)), /invalid destination port 70000/);
  t.throws(() => traceNftPacket(inputRules, fwd('10.0.0.1', '172.30.0.41', 80), { localAddresses: ['bogus'] }), /invalid local address "bogus"/);
  const empty = traceNftPacket(parseNftRuleset(''), fwd('1.2.3.4', '5.6.7.8', 1), OPTS);
  t.same([empty.verdict, empty.paths.length, empty.paths[0]?.steps.length], ['ACCEPT', 1, 0], 'empty ruleset');
  t.equal(trace(fwd('10.0.0.2', '172.30.0.44', 80)).paths.length, 2, 'tracing does not change the ruleset');
});

// ---------------------------------------------------------------------------
// Shared DNAT maps: endpoints as elements keyed by the destination and a numgen index.
// ---------------------------------------------------------------------------

/**
 * kube-proxy's layout for service ports without session affinity: `dnat ip to KEY . numgen random mod N
 * map @…-endpoints`, the hairpin set in the masquerading chain. 10.96.0.30 has no element for index 1:
 * that lookup misses and the rule after it runs. The *_LISTED texts were printed by nft 1.0.6 after
 * `nft -f` of the *_INPUT texts in a throwaway network namespace.
 */
const DNAT_MAP_INPUT = `add table ip kp
add chain ip kp nat-prerouting { type nat hook prerouting priority dstnat ; }
add chain ip kp nat-output { type nat hook output priority -100 ; }
add chain ip kp nat-postrouting { type nat hook postrouting priority srcnat ; }
add chain ip kp services
add chain ip kp mark-for-masquerade
add chain ip kp masquerading
add chain ip kp lb-internal-2
add chain ip kp lb-nodeport-2
add chain ip kp lb-external-local-2-1
add map ip kp service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }
add map ip kp service-nodeports { type inet_proto . inet_service : verdict ; }
add map ip kp service-endpoints { typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport ; comment "endpoints, by index" ; }
add map ip kp service-local-endpoints { typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport ; }
add map ip kp nodeport-endpoints { typeof meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport ; }
add set ip kp hairpin-endpoints { type ipv4_addr . ipv4_addr ; }
add rule ip kp nat-prerouting jump services
add rule ip kp nat-output jump services
add rule ip kp nat-postrouting jump masquerading
add rule ip kp services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kp services fib daddr type local meta l4proto . th dport vmap @service-nodeports
add rule ip kp mark-for-masquerade mark set mark or 0x4000
add rule ip kp masquerading ct status dnat ip saddr . ip daddr @hairpin-endpoints jump mark-for-masquerade comment "hairpin"
add rule ip kp masquerading mark and 0x4000 == 0 return
add rule ip kp masquerading mark set mark xor 0x4000
add rule ip kp masquerading masquerade fully-random
add rule ip kp lb-internal-2 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
add rule ip kp lb-internal-2 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3 map @service-endpoints
add rule ip kp lb-internal-2 ip daddr 10.96.0.30 meta l4proto tcp dnat to 10.244.9.9:9999 comment "after a miss"
add rule ip kp lb-nodeport-2 jump mark-for-masquerade
add rule ip kp lb-nodeport-2 dnat ip to meta l4proto . th dport . numgen random mod 2 map @nodeport-endpoints
add rule ip kp lb-external-local-2-1 ip saddr 10.244.0.0/16 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @service-endpoints comment "short-circuit pod traffic"
add rule ip kp lb-external-local-2-1 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
add rule ip kp lb-external-local-2-1 fib saddr type local dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @service-endpoints comment "short-circuit local traffic"
add rule ip kp lb-external-local-2-1 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 1 map @service-local-endpoints
add element ip kp service-ips { 10.96.0.10 . tcp . 80 : goto lb-internal-2, 10.96.0.30 . tcp . 80 : goto lb-internal-2, 192.0.2.10 . tcp . 80 : goto lb-external-local-2-1 }
add element ip kp service-nodeports { tcp . 30080 : goto lb-nodeport-2 }
add element ip kp service-endpoints { 10.96.0.10 . tcp . 80 . 0 : 10.244.1.1 . 8080, 10.96.0.10 . tcp . 80 . 1 : 10.244.2.2 . 8080, 10.96.0.10 . tcp . 80 . 2 : 10.244.3.3 . 8080 }
add element ip kp service-endpoints { 10.96.0.30 . tcp . 80 . 0 : 10.244.1.1 . 9090, 10.96.0.30 . tcp . 80 . 2 : 10.244.3.3 . 9090 }
add element ip kp service-endpoints { 192.0.2.10 . tcp . 80 . 0 : 10.244.1.1 . 8080, 192.0.2.10 . tcp . 80 . 1 : 10.244.2.2 . 8080 }
add element ip kp service-local-endpoints { 192.0.2.10 . tcp . 80 . 0 : 10.244.1.1 . 8080 }
add element ip kp nodeport-endpoints { tcp . 30080 . 0 : 10.244.1.1 . 8080, tcp . 30080 . 1 : 10.244.2.2 . 8080 }
add element ip kp hairpin-endpoints { 10.244.1.1 . 10.244.1.1, 10.244.2.2 . 10.244.2.2, 10.244.3.3 . 10.244.3.3 }
`;

const DNAT_MAP_LISTED = `table ip kp {
	map service-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		elements = { 10.96.0.10 . tcp . 80 : goto lb-internal-2,
			     192.0.2.10 . tcp . 80 : goto lb-external-local-2-1,
			     10.96.0.30 . tcp . 80 : goto lb-internal-2 }
	}

	map service-nodeports {
		type inet_proto . inet_service : verdict
		elements = { tcp . 30080 : goto lb-nodeport-2 }
	}

	map service-endpoints {
		typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport
		comment "endpoints, by index"
		elements = { 10.96.0.10 . tcp . 80 . 0 : 10.244.1.1 . 8080,
			     192.0.2.10 . tcp . 80 . 0 : 10.244.1.1 . 8080,
			     10.96.0.30 . tcp . 80 . 0 : 10.244.1.1 . 9090,
			     10.96.0.10 . tcp . 80 . 1 : 10.244.2.2 . 8080,
			     192.0.2.10 . tcp . 80 . 1 : 10.244.2.2 . 8080,
			     10.96.0.10 . tcp . 80 . 2 : 10.244.3.3 . 8080,
			     10.96.0.30 . tcp . 80 . 2 : 10.244.3.3 . 9090 }
	}

	map service-local-endpoints {
		typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport
		elements = { 192.0.2.10 . tcp . 80 . 0 : 10.244.1.1 . 8080 }
	}

	map nodeport-endpoints {
		typeof meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport
		elements = { tcp . 30080 . 0 : 10.244.1.1 . 8080,
			     tcp . 30080 . 1 : 10.244.2.2 . 8080 }
	}

	set hairpin-endpoints {
		type ipv4_addr . ipv4_addr
		elements = { 10.244.1.1 . 10.244.1.1,
			     10.244.2.2 . 10.244.2.2,
			     10.244.3.3 . 10.244.3.3 }
	}

	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}

	chain nat-output {
		type nat hook output priority -100; policy accept;
		jump services
	}

	chain nat-postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		jump masquerading
	}

	chain services {
		ip daddr . meta l4proto . th dport vmap @service-ips
		fib daddr type local meta l4proto . th dport vmap @service-nodeports
	}

	chain mark-for-masquerade {
		meta mark set meta mark | 0x00004000
	}

	chain masquerading {
		ct status dnat ip saddr . ip daddr @hairpin-endpoints jump mark-for-masquerade comment "hairpin"
		meta mark & 0x00004000 == 0x00000000 return
		meta mark set meta mark ^ 0x00004000
		masquerade fully-random
	}

	chain lb-internal-2 {
		ip saddr != 10.244.0.0/16 jump mark-for-masquerade
		dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3 map @service-endpoints
		ip daddr 10.96.0.30 meta l4proto tcp dnat to 10.244.9.9:9999 comment "after a miss"
	}

	chain lb-nodeport-2 {
		jump mark-for-masquerade
		dnat ip to meta l4proto . th dport . numgen random mod 2 map @nodeport-endpoints
	}

	chain lb-external-local-2-1 {
		ip saddr 10.244.0.0/16 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @service-endpoints comment "short-circuit pod traffic"
		fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
		fib saddr type local dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @service-endpoints comment "short-circuit local traffic"
		dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 1 map @service-local-endpoints
	}
}
`;

const DNAT_MAP_V6_INPUT = `add table ip6 kp
add chain ip6 kp nat-prerouting { type nat hook prerouting priority dstnat ; }
add chain ip6 kp nat-postrouting { type nat hook postrouting priority srcnat ; }
add chain ip6 kp services
add chain ip6 kp mark-for-masquerade
add chain ip6 kp masquerading
add chain ip6 kp lb-internal-2
add chain ip6 kp lb-nodeport-2
add map ip6 kp service-ips { type ipv6_addr . inet_proto . inet_service : verdict ; }
add map ip6 kp service-nodeports { type inet_proto . inet_service : verdict ; }
add map ip6 kp service-endpoints { typeof ip6 daddr . meta l4proto . th dport . numgen random mod 1 : ip6 daddr . th dport ; }
add map ip6 kp nodeport-endpoints { typeof meta l4proto . th dport . numgen random mod 1 : ip6 daddr . th dport ; }
add set ip6 kp hairpin-endpoints { type ipv6_addr . ipv6_addr ; }
add rule ip6 kp nat-prerouting jump services
add rule ip6 kp nat-postrouting jump masquerading
add rule ip6 kp services ip6 daddr . meta l4proto . th dport vmap @service-ips
add rule ip6 kp services fib daddr type local meta l4proto . th dport vmap @service-nodeports
add rule ip6 kp mark-for-masquerade mark set mark or 0x4000
add rule ip6 kp masquerading ct status dnat ip6 saddr . ip6 daddr @hairpin-endpoints jump mark-for-masquerade
add rule ip6 kp masquerading mark and 0x4000 == 0 return
add rule ip6 kp masquerading mark set mark xor 0x4000
add rule ip6 kp masquerading masquerade fully-random
add rule ip6 kp lb-internal-2 ip6 saddr != fd00:10:244::/48 jump mark-for-masquerade
add rule ip6 kp lb-internal-2 dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 2 map @service-endpoints
add rule ip6 kp lb-nodeport-2 jump mark-for-masquerade
add rule ip6 kp lb-nodeport-2 dnat ip6 to meta l4proto . th dport . numgen random mod 2 map @nodeport-endpoints
add element ip6 kp service-ips { fd00:96::10 . tcp . 80 : goto lb-internal-2 }
add element ip6 kp service-nodeports { tcp . 30080 : goto lb-nodeport-2 }
add element ip6 kp service-endpoints { fd00:96::10 . tcp . 80 . 0 : fd00:10:244:1::1 . 8080, fd00:96::10 . tcp . 80 . 1 : fd00:10:244:2::2 . 8080 }
add element ip6 kp nodeport-endpoints { tcp . 30080 . 0 : fd00:10:244:1::1 . 8080, tcp . 30080 . 1 : fd00:10:244:2::2 . 8080 }
add element ip6 kp hairpin-endpoints { fd00:10:244:1::1 . fd00:10:244:1::1, fd00:10:244:2::2 . fd00:10:244:2::2 }
`;

const DNAT_MAP_V6_LISTED = `table ip6 kp {
	map service-ips {
		type ipv6_addr . inet_proto . inet_service : verdict
		elements = { fd00:96::10 . tcp . 80 : goto lb-internal-2 }
	}

	map service-nodeports {
		type inet_proto . inet_service : verdict
		elements = { tcp . 30080 : goto lb-nodeport-2 }
	}

	map service-endpoints {
		typeof ip6 daddr . meta l4proto . th dport . numgen random mod 1 : ip6 daddr . th dport
		elements = { fd00:96::10 . tcp . 80 . 0 : fd00:10:244:1::1 . 8080,
			     fd00:96::10 . tcp . 80 . 1 : fd00:10:244:2::2 . 8080 }
	}

	map nodeport-endpoints {
		typeof meta l4proto . th dport . numgen random mod 1 : ip6 daddr . th dport
		elements = { tcp . 30080 . 0 : fd00:10:244:1::1 . 8080,
			     tcp . 30080 . 1 : fd00:10:244:2::2 . 8080 }
	}

	set hairpin-endpoints {
		type ipv6_addr . ipv6_addr
		elements = { fd00:10:244:1::1 . fd00:10:244:1::1,
			     fd00:10:244:2::2 . fd00:10:244:2::2 }
	}

	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}

	chain nat-postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		jump masquerading
	}

	chain services {
		ip6 daddr . meta l4proto . th dport vmap @service-ips
		fib daddr type local meta l4proto . th dport vmap @service-nodeports
	}

	chain mark-for-masquerade {
		meta mark set meta mark | 0x00004000
	}

	chain masquerading {
		ct status dnat ip6 saddr . ip6 daddr @hairpin-endpoints jump mark-for-masquerade
		meta mark & 0x00004000 == 0x00000000 return
		meta mark set meta mark ^ 0x00004000
		masquerade fully-random
	}

	chain lb-internal-2 {
		ip6 saddr != fd00:10:244::/48 jump mark-for-masquerade
		dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 2 map @service-endpoints
	}

	chain lb-nodeport-2 {
		jump mark-for-masquerade
		dnat ip6 to meta l4proto . th dport . numgen random mod 2 map @nodeport-endpoints
	}
}
`;

const DNAT_MAP_FORMS = [['nft -f input', parseNftRuleset(DNAT_MAP_INPUT)], ['nft list output', parseNftRuleset(DNAT_MAP_LISTED)]] as const;
const DNAT_MAP_V6_FORMS = [['nft -f input', parseNftRuleset(DNAT_MAP_V6_INPUT)], ['nft list output', parseNftRuleset(DNAT_MAP_V6_LISTED)]] as const;

/** Each path's endpoint, probability and masquerade, in path order. */
function pathSummary(r: TraceResult): string[] {
  return r.paths.map((p) => `${p.dnat === undefined ? '-' : `${p.dnat.address}:${p.dnat.port}`} ${Math.round(p.probability * 1e4) / 1e4} ${p.verdict}${p.masquerade ? ' masq' : ''}`);
}

t.test('DNAT maps: typeof declarations, data elements and the dnat statement parse in both forms', async (t) => {
  for (const [form, rs] of DNAT_MAP_FORMS) {
    const tb = rs.tables.get('ip kp');
    const eps = tb?.sets.get('service-endpoints');
    t.same([eps?.isMap, eps?.keyTypes, eps?.dataType, eps?.dataTypes, eps?.comment],
      [true, ['ipv4_addr', 'inet_proto', 'inet_service', 'integer'], 'ipv4_addr', ['ipv4_addr', 'inet_service'], 'endpoints, by index'], `${form}: typeof key and data`);
    t.same(eps?.elements.map((e) => `${e.keyText} : ${e.data ?? ''}`).sort(), [
      '10.96.0.10 . tcp . 80 . 0 : 10.244.1.1 . 8080', '10.96.0.10 . tcp . 80 . 1 : 10.244.2.2 . 8080', '10.96.0.10 . tcp . 80 . 2 : 10.244.3.3 . 8080',
      '10.96.0.30 . tcp . 80 . 0 : 10.244.1.1 . 9090', '10.96.0.30 . tcp . 80 . 2 : 10.244.3.3 . 9090',
      '192.0.2.10 . tcp . 80 . 0 : 10.244.1.1 . 8080', '192.0.2.10 . tcp . 80 . 1 : 10.244.2.2 . 8080',
    ], `${form}: elements with their data`);
    t.same(tb?.sets.get('nodeport-endpoints')?.keyTypes, ['inet_proto', 'inet_service', 'integer'], `${form}: NodePort key`);
    const rule = tb?.chains.get('lb-internal-2')?.rules[1];
    t.equal(rule?.raw, 'dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3 map @service-endpoints', `${form}: rule text`);
    t.same(rule?.stmts.map((s) => s.k), ['nat-map'], `${form}: a NAT map lookup, not an unmodelled statement`);
    const shortCircuit = tb?.chains.get('lb-external-local-2-1')?.rules[0];
    t.same([shortCircuit?.stmts.map((s) => s.k), shortCircuit?.comment], [['match', 'nat-map'], 'short-circuit pod traffic'], `${form}: a match, then the dnat, then a comment`);
  }
});

t.test('DNAT map hit: one path per numgen value, each with its probability and endpoint', async (t) => {
  const three = ['10.244.1.1:8080 0.3333 ACCEPT', '10.244.2.2:8080 0.3333 ACCEPT', '10.244.3.3:8080 0.3333 ACCEPT'];
  for (const [form, rs] of DNAT_MAP_FORMS) {
    const r = trace(fwd('10.244.9.9', '10.96.0.10', 80), rs);
    t.same(pathSummary(r), three, `${form}: ClusterIP, mod 3`);
    t.ok(close(totalProbability(r), 1), `${form}: probabilities sum to 1`);
    const step = pathTo(r, '10.244.2.2').steps.find((s) => s.chain === 'lb-internal-2');
    t.same([step?.action, step?.notes], ['dnat to 10.244.2.2:8080', [
      'numgen random mod 3 → 1 (probability 1/3)', '@service-endpoints: 10.96.0.10 . tcp . 80 . 1 → 10.244.2.2 . 8080',
    ]], `${form}: the step shows the index and the element`);
    t.notOk(pathTo(r, '10.244.2.2').steps.some((s) => s.chain === 'nat-output' || (s.chain === 'nat-prerouting' && s.action.startsWith('dnat'))),
      `${form}: the DNAT is final for the hook`);

    t.same(pathSummary(trace(fwd(EXTERNAL, NODE_IP, 30080), rs)), ['10.244.1.1:8080 0.5 ACCEPT masq', '10.244.2.2:8080 0.5 ACCEPT masq'],
      `${form}: NodePort, key without the destination, masqueraded`);
    t.same(pathSummary(trace(fwd(EXTERNAL, '192.0.2.10', 80), rs)), ['10.244.1.1:8080 1 ACCEPT'],
      `${form}: eTP=Local from outside: the matches before the short-circuit dnats fail, no fork there, only the local endpoint`);
    t.same(pathSummary(trace(fwd('10.244.9.9', '192.0.2.10', 80), rs)), ['10.244.1.1:8080 0.5 ACCEPT', '10.244.2.2:8080 0.5 ACCEPT'],
      `${form}: eTP=Local from a pod: "ip saddr … dnat … map" short-circuits to every endpoint`);
    t.same(pathSummary(trace(local('192.0.2.10', 80), rs)), ['10.244.1.1:8080 0.5 ACCEPT masq', '10.244.2.2:8080 0.5 ACCEPT masq'],
      `${form}: eTP=Local from the host: "fib saddr type local dnat … map", masqueraded`);
  }
  const project = (r: TraceResult): unknown => r.paths.map((p) => [p.probability, p.dnat, p.masquerade, p.steps.map((s) => `${s.chain} ${s.action} ${(s.notes ?? []).join(' | ')}`)]);
  for (const packet of [fwd('10.244.9.9', '10.96.0.10', 80), fwd('10.244.1.1', '10.96.0.30', 80), fwd(EXTERNAL, NODE_IP, 30080), local('192.0.2.10', 80)]) {
    t.same(project(trace(packet, DNAT_MAP_FORMS[1][1])), project(trace(packet, DNAT_MAP_FORMS[0][1])), `both forms trace ${packet.dst}:${packet.dport} identically`);
  }
});

t.test('DNAT map miss: the rule does not match and evaluation goes on with the next rule', async (t) => {
  for (const [form, rs] of DNAT_MAP_FORMS) {
    const r = trace(fwd('10.244.9.9', '10.96.0.30', 80), rs);
    t.same(pathSummary(r), ['10.244.1.1:9090 0.3333 ACCEPT', '10.244.9.9:9999 0.3333 ACCEPT', '10.244.3.3:9090 0.3333 ACCEPT'],
      `${form}: index 1 has no element: that third goes to the next rule's DNAT`);
    const miss = pathTo(r, '10.244.9.9').steps.filter((s) => s.chain === 'lb-internal-2');
    t.same(miss.map((s) => [s.action, s.comment, s.notes]), [
      ['no match', undefined, ['numgen random mod 3 → 1 (probability 1/3)', '@service-endpoints: no element for 10.96.0.30 . tcp . 80 . 1, no match']],
      ['dnat to 10.244.9.9:9999', 'after a miss', undefined],
    ], `${form}: the miss is recorded, then the next rule DNATs`);
    const other = trace(fwd('10.244.9.9', '10.96.0.99', 80), rs);
    t.same(pathSummary(other), ['- 1 ACCEPT'], `${form}: a destination no map knows is untouched`);
  }
  const inline = rules(`table ip t {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		dnat ip to ip daddr . numgen random mod 2 map { 10.0.0.1 . 0 : 10.1.0.1 . 8080, 10.0.0.2 . 1 : 10.1.0.2 }
		drop
	}
}
`);
  t.same(pathSummary(traceNftPacket(inline, fwd('1.1.1.1', '10.0.0.1', 80), OPTS)), ['10.1.0.1:8080 0.5 ACCEPT', '- 0.5 DROP'],
    'an anonymous map: the miss falls through to drop');
  t.same(pathSummary(traceNftPacket(inline, fwd('1.1.1.1', '10.0.0.2', 80), OPTS)), ['- 0.5 DROP', '10.1.0.2:80 0.5 ACCEPT'],
    'data without a port keeps the destination port');
});

t.test('hairpin: ct status dnat and the post-DNAT addresses in @hairpin-endpoints', async (t) => {
  for (const [form, rs] of DNAT_MAP_FORMS) {
    const self = trace(fwd('10.244.1.1', '10.96.0.10', 80), rs);
    t.same(pathSummary(self), ['10.244.1.1:8080 0.3333 ACCEPT masq', '10.244.2.2:8080 0.3333 ACCEPT', '10.244.3.3:8080 0.3333 ACCEPT'],
      `${form}: masqueraded only on the path back to itself`);
    const hairpin = pathTo(self, '10.244.1.1').steps.find((s) => s.chain === 'masquerading' && s.comment === 'hairpin');
    t.equal(hairpin?.action, 'jump mark-for-masquerade', `${form}: the hairpin rule marks the packet`);
    t.notOk(pathTo(self, '10.244.2.2').steps.some((s) => s.comment === 'hairpin'), `${form}: not on the other paths`);
    const direct = trace(fwd('10.244.1.1', '10.244.1.1', 8080), rs);
    t.same(pathSummary(direct), ['- 1 ACCEPT'], `${form}: the same addresses without a DNAT: ct status dnat is false, no masquerade`);
  }
});

t.test('DNAT maps and hairpin in IPv6, both forms', async (t) => {
  for (const [form, rs] of DNAT_MAP_V6_FORMS) {
    t.same(pathSummary(trace(fwd('fd00:10:244:9::9', 'fd00:96::10', 80), rs)),
      ['fd00:10:244:1::1:8080 0.5 ACCEPT', 'fd00:10:244:2::2:8080 0.5 ACCEPT'], `${form}: pod to ClusterIP`);
    const self = trace(fwd('fd00:10:244:2::2', 'fd00:96::10', 80), rs);
    t.same(pathSummary(self), ['fd00:10:244:1::1:8080 0.5 ACCEPT', 'fd00:10:244:2::2:8080 0.5 ACCEPT masq'], `${form}: hairpin`);
    t.equal(pathTo(self, 'fd00:10:244:2::2').steps.find((s) => s.chain === 'lb-internal-2')?.action, 'dnat to [fd00:10:244:2::2]:8080',
      `${form}: IPv6 endpoint in brackets`);
    t.same(pathSummary(trace(fwd('2600:5200::1', '2001:db8::1', 30080), rs)),
      ['fd00:10:244:1::1:8080 0.5 ACCEPT masq', 'fd00:10:244:2::2:8080 0.5 ACCEPT masq'], `${form}: NodePort`);
    t.same(pathSummary(trace(fwd('fd00:10:244:1::1', 'fd00:10:244:1::1', 8080), rs)), ['- 1 ACCEPT'], `${form}: no DNAT, no hairpin`);
    t.same(trace(fwd('10.244.9.9', '10.96.0.10', 80), rs).endpoints, [], `${form}: IPv4 packets do not see the ip6 table`);
  }
});

t.test('DNAT maps: what nft would refuse is a parse error', async (t) => {
  const head = `add table ip t
add chain ip t c { type nat hook prerouting priority dstnat ; }
add map ip t m { typeof ip daddr . numgen random mod 1 : ip daddr . th dport ; }
add map ip t v { type ipv4_addr . integer : verdict ; }
add set ip t s { type ipv4_addr . integer ; }
`;
  t.doesNotThrow(() => parseNftRuleset(`${head}add rule ip t c dnat ip to ip daddr . numgen random mod 2 map @m\n`), 'the valid one parses');
  t.match(parseError(`${head}add element ip t m { 10.0.0.1 . 0 : 10.244.1.300 . 80 }\n`).message, /line 6: invalid IP address "10.244.1.300"/);
  t.match(parseError(`${head}add element ip t m { 10.0.0.1 . 0 : 10.244.1.3 . 80000 }\n`).message, /line 6: port out of range "80000"/);
  t.match(parseError(`${head}add element ip t m { 10.0.0.1 . 0 : 10.244.1.3 }\n`).message, /line 6: data "10.244.1.3" has 1 component\(s\), the map's data type has 2/);
  t.match(parseError(`${head}add element ip t m { 10.0.0.1 . 0 : fd00::1 . 80 }\n`).message, /line 6: "fd00::1" is not an IPv4 address/);
  t.match(parseError(`${head}add rule ip t c dnat ip to ip daddr . numgen random mod 2 map @v\n`).message, /line 6: @v is not a data map; dnat needs one/);
  t.match(parseError(`${head}add rule ip t c dnat ip to ip daddr . numgen random mod 2 map @s\n`).message, /line 6: @s is not a data map/);
  t.match(parseError(`${head}add rule ip t c dnat ip to ip daddr map @m\n`).message, /line 6: @m has 2 key component\(s\), the expression has 1/);
  t.match(parseError(`${head}add rule ip t c dnat ip to ip daddr . numgen random mod 2 map @nope\n`).message, /line 6: set @nope does not exist/);
});
