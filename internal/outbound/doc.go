// Package outbound is the guard for every request regtrigger makes to a
// user-supplied URL (trigger webhooks).
//
// The rules, from the design's "Outbound safety" section:
//
//   - CheckURL (static, no DNS): scheme http or https; http ports 80, 21,
//     70, 210, 280, 443, 488, 591, 777 and 1025–65535, https port 443 only;
//     no userinfo; the host is IDNA-mapped to ASCII, lowercased and its
//     trailing dot removed; localhost and *.localhost, numeric hosts that are
//     not canonical IPv4 (2130706433, 0x7f.1, 0177.0.0.1) and denied IP
//     literals are refused; opaque URLs are refused; the fragment is dropped.
//   - CheckIP: the address ranges that are never a public webhook server
//     (loopback, private, link-local, CGNAT, multicast, reserved,
//     documentation, IPv6 forms embedding IPv4, ...) and the cloud metadata
//     and credential endpoints, also when an IPv6 form embeds one.
//   - Client: every connection runs CheckIP in net.Dialer.Control on the
//     address actually dialled, so a name that resolves (or re-resolves, as
//     in DNS rebinding) to a denied address is refused before the connect
//     system call. A resolver failure means no connection. Redirects are
//     not followed, no proxy is taken from the environment, TLS 1.2+ is
//     verified against the system roots (or Config.RootCAs for a private
//     PKI; there is no skip-verify option), compression is off, the
//     deadline is 10 s by default (30 s at most) and at most 64 KiB of the
//     answer is read.
//   - Client.Check and Client.Resolve: the verdict Post would reach, without
//     connecting, from the client's own resolver and the same connect-time
//     rule (an IPv4-mapped answer is judged as the IPv4 address the dialer
//     connects to). regtrigger check-url prints it.
//
// Config.AllowPrivate opens named ranges for webhook servers inside a VPC,
// or on this machine: allowing 127.0.0.0/8 (or 127.0.0.1/32) is how tests
// and a local `regtrigger serve` user reach a local server. An allowance
// only exempts addresses from the range rules: the scheme and port rules
// still apply, and the metadata endpoints (in any form), unspecified,
// 0.0.0.0/8, broadcast, multicast and IPv4-embedding IPv6 addresses stay
// denied. ParseCIDRs and NewClient refuse an allowed prefix overlapping an
// IPv4-embedding form, which could only mislead.
//
// Errors never contain a URL's query string, userinfo or header values:
// URLs in errors go through Redact.
package outbound
