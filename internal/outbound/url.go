package outbound

import (
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ErrBlocked is matched (errors.Is) by every *BlockedError: the URL or the
// address actually dialled is not an allowed destination. A blocked delivery
// is final; retrying cannot change the answer.
var ErrBlocked = errors.New("outbound: destination blocked")

// BlockedError reports a destination denied by the guard.
type BlockedError struct {
	// URL is the destination, redacted with Redact: no query, no userinfo,
	// no fragment. Safe to log.
	URL string
	// Reason says which rule denied it, e.g. "port 22 is not allowed for http"
	// or "address 127.0.0.1 is loopback (127.0.0.0/8)".
	Reason string
}

func (e *BlockedError) Error() string {
	if e.URL == "" {
		return "outbound: blocked: " + e.Reason
	}
	return "outbound: blocked " + e.URL + ": " + e.Reason
}

// Is makes errors.Is(err, ErrBlocked) true for every *BlockedError.
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }

// httpPorts are the explicit ports allowed for http besides 1025–65535.
var httpPorts = map[int]bool{80: true, 21: true, 70: true, 210: true, 280: true, 443: true, 488: true, 591: true, 777: true}

// portAllowed reports whether port may be used with scheme ("http" or "https").
func portAllowed(scheme string, port int) bool {
	switch scheme {
	case "http":
		return httpPorts[port] || (port >= 1025 && port <= 65535)
	case "https":
		return port == 443
	}
	return false
}

// hostProfile maps a host name for lookup as UTS #46 / RFC 5891 describe:
// case and width folding, NFC, STD3 ASCII rules (letters, digits, hyphen),
// bidi and joiner rules, DNS length limits.
var hostProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.VerifyDNSLength(true),
	idna.Transitional(false),
)

// CheckURL parses raw and applies the static rules, without any DNS lookup:
// scheme http or https, the port rules, no userinfo, a valid host name
// (IDNA-mapped to ASCII, lowercased, trailing dot removed), no localhost, and
// for IP literals the address rules of CheckIP with no allowed private
// ranges. The fragment is dropped.
//
// On success it returns the normalised URL to use for the request; the host
// is in ASCII form and the port, when given, is in canonical decimal form.
// On failure the error is a *BlockedError.
func CheckURL(raw string) (*url.URL, error) {
	return Config{}.CheckURL(raw)
}

// CheckURL is like the package-level CheckURL, but an IP literal inside one
// of c.AllowPrivate is accepted (the always-denied addresses stay denied; see
// CheckIP). The scheme and port rules are the same.
func (c Config) CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &BlockedError{URL: Redact(raw), Reason: "malformed URL: " + parseProblem(err)}
	}
	blocked := func(reason string) (*url.URL, error) {
		return nil, &BlockedError{URL: Redact(raw), Reason: reason}
	}
	if u.Opaque != "" {
		return blocked("opaque URL (scheme: followed by no //host)")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		if u.Scheme == "" {
			return blocked("missing scheme: want http:// or https://")
		}
		return blocked("scheme " + strconv.Quote(u.Scheme) + " is not allowed: want http or https")
	}
	if u.User != nil {
		return blocked("userinfo (user:password@) is not allowed in the URL")
	}

	host, ip, reason := normaliseHost(u)
	if reason != "" {
		return blocked(reason)
	}
	if ip.IsValid() {
		if err := CheckIP(ip, c.AllowPrivate); err != nil {
			return blocked(err.(*BlockedError).Reason)
		}
	}

	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 {
			return blocked("port " + strconv.Quote(p) + " is out of range")
		}
		port = n
	}
	if !portAllowed(u.Scheme, port) {
		if u.Scheme == "https" {
			return blocked("port " + strconv.Itoa(port) + " is not allowed for https: only 443")
		}
		return blocked("port " + strconv.Itoa(port) + " is not allowed for http: want 80, 21, 70, 210, 280, 443, 488, 591, 777 or 1025-65535")
	}

	// Rebuild the authority from the checked parts so that what is dialled
	// is exactly what was checked.
	hostPart := host
	if ip.Is6() {
		hostPart = "[" + host + "]"
	}
	if u.Port() != "" {
		hostPart = net.JoinHostPort(host, strconv.Itoa(port))
	}
	u.Host = hostPart
	u.Fragment = ""
	u.RawFragment = ""
	return u, nil
}

// normaliseHost returns the ASCII host of u and, for an IP literal, the
// address. A non-empty reason means the host is denied.
func normaliseHost(u *url.URL) (host string, ip netip.Addr, reason string) {
	h := u.Hostname()
	if h == "" {
		return "", netip.Addr{}, "empty host"
	}
	if strings.HasPrefix(u.Host, "[") {
		// url.Parse only accepts brackets around an IPv6 literal.
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is6() {
			return "", netip.Addr{}, "invalid IPv6 literal"
		}
		if a.Zone() != "" {
			return "", netip.Addr{}, "IPv6 zone identifiers are not allowed"
		}
		return a.String(), a, ""
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if !a.Is4() {
			return "", netip.Addr{}, "IPv6 literal must be in brackets"
		}
		return a.String(), a, ""
	}

	name := strings.TrimSuffix(h, ".")
	if name == "" || strings.HasSuffix(name, ".") {
		return "", netip.Addr{}, "invalid host name: empty label"
	}
	if !utf8.ValidString(name) {
		return "", netip.Addr{}, "invalid host name: not UTF-8"
	}
	ascii, err := hostProfile.ToASCII(name)
	if err != nil {
		return "", netip.Addr{}, "invalid host name: " + idnaProblem(err)
	}
	ascii = strings.ToLower(ascii)
	// The ASCII form must itself be valid and stable, so that what is
	// checked is what is dialled (and a second check gives the same answer).
	if again, err := hostProfile.ToASCII(ascii); err != nil || again != ascii {
		return "", netip.Addr{}, "invalid host name: unstable IDNA form"
	}
	// IDNA mapping can turn a name into an address: fullwidth digits
	// "１２７.０.０.１" map to "127.0.0.1".
	if a, err := netip.ParseAddr(ascii); err == nil {
		return a.String(), a, ""
	}
	if numericLastLabel(ascii) {
		// A browser or C resolver reads "2130706433", "0x7f.1" or
		// "0177.0.0.1" as an IPv4 address; no public name ends in a
		// numeric label, so refuse rather than guess.
		return "", netip.Addr{}, "numeric host " + strconv.Quote(ascii) + " is not a canonical IPv4 address"
	}
	if ascii == "localhost" || strings.HasSuffix(ascii, ".localhost") {
		return "", netip.Addr{}, "localhost is not allowed"
	}
	return ascii, netip.Addr{}, ""
}

// numericLastLabel reports whether the last label of name is a decimal
// number or a 0x hexadecimal number: the WHATWG "ends in a number" rule,
// which makes URL parsers treat the host as an IPv4 address.
func numericLastLabel(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last == "" {
		return false
	}
	if strings.HasPrefix(last, "0x") {
		last = last[2:]
		for _, r := range last {
			if !strings.ContainsRune("0123456789abcdef", r) {
				return false
			}
		}
		return true
	}
	for _, r := range last {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// parseProblem describes a url.Parse error without quoting the URL (which
// may hold a secret in its query or userinfo).
func parseProblem(err error) string {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return "unparseable"
	}
	var esc url.EscapeError
	if errors.As(ue.Err, &esc) {
		return "invalid percent-escape"
	}
	var hostErr url.InvalidHostError
	if errors.As(ue.Err, &hostErr) {
		return "invalid character in host"
	}
	msg := ue.Err.Error()
	switch {
	case strings.Contains(msg, "invalid port"):
		return "invalid port"
	case strings.Contains(msg, "control character"):
		return "control character in URL"
	case strings.Contains(msg, "missing protocol scheme"):
		return "missing scheme: want http:// or https://"
	case strings.Contains(msg, "missing ']'"), strings.Contains(msg, "IP-literal"):
		return "invalid IP literal in host"
	}
	return "unparseable"
}

// idnaProblem describes an IDNA error briefly. The idna messages quote the
// offending label; a host name is not secret, but keep the text short.
func idnaProblem(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "idna: ")
	if len(msg) > 120 {
		msg = msg[:120] + "..."
	}
	return msg
}

// Redact returns rawURL as scheme://host[:port]/path with the userinfo,
// query and fragment removed, for logs and errors. A URL that does not parse
// is cut the same way as well as can be done by hand.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return redactByHand(rawURL)
	}
	if u.Opaque != "" {
		return u.Scheme + ":[opaque]"
	}
	var b strings.Builder
	if u.Scheme != "" {
		b.WriteString(u.Scheme)
		b.WriteString(":")
	}
	if u.Host != "" || u.Scheme != "" {
		b.WriteString("//")
		b.WriteString(u.Host)
	}
	b.WriteString(u.EscapedPath())
	return b.String()
}

// redactByHand cuts the query, fragment and userinfo out of a string that
// is not a valid URL.
func redactByHand(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	rest := s
	prefix := ""
	if i := strings.Index(s, "//"); i >= 0 {
		prefix, rest = s[:i+2], s[i+2:]
	}
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:]
	}
	// Escape control characters and spaces so that a log line stays one line.
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == ' ' {
			return '_'
		}
		return r
	}, prefix+authority+path)
}
