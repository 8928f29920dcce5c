package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"strings"
)

// offer is one credential a request presents.
type offer struct {
	scheme Scheme
	where  string // the header or parameter, for messages
	value  string
}

// signatureHeaders are the headers of the signature schemes, in the order
// offers lists them, with the canonical key that looks each up (as
// Header.Values would canonicalise it on every request: X-JFrog-Event-Auth
// is X-Jfrog-Event-Auth).
var signatureHeaders = []struct {
	scheme      Scheme
	header, key string
}{
	{SchemeGitHub, HeaderGitHub, http.CanonicalHeaderKey(HeaderGitHub)},
	{SchemeNexus, HeaderNexus, http.CanonicalHeaderKey(HeaderNexus)},
	{SchemeJFrog, HeaderJFrog, http.CanonicalHeaderKey(HeaderJFrog)},
}

// offers collects the credentials of a request. A header that cannot be
// used at all (sent twice, or the legacy GitHub header alone) is an error
// rather than an offer.
func offers(h http.Header, q url.Values) ([]offer, []error) {
	var out []offer
	var errs []error
	for _, s := range signatureHeaders {
		switch vs := h[s.key]; len(vs) {
		case 0:
		case 1:
			out = append(out, offer{s.scheme, s.header, vs[0]})
		default:
			errs = append(errs, &Error{Kind: ErrMalformedSignature, Header: s.header, Reason: fmt.Sprintf("sent %d times; a registry sends it once", len(vs))})
		}
	}
	// GitHub signs with HMAC-SHA1 in X-Hub-Signature only for old
	// receivers, and always sends X-Hub-Signature-256 next to it when the
	// hook has a secret. A request with the SHA-1 header alone is therefore
	// not a current GitHub delivery, and accepting it would let a forger
	// pick the weaker, deprecated algorithm (a downgrade) for no gain, so it
	// is refused with a reason rather than checked.
	if len(h.Values(HeaderGitHub)) == 0 && h.Get(HeaderGitHubSHA1) != "" {
		errs = append(errs, &Error{Kind: ErrNoCredentials, Header: HeaderGitHubSHA1,
			Reason: "the legacy HMAC-SHA1 signature is not accepted alone; GitHub sends " + HeaderGitHub + " with it whenever the webhook has a secret"})
	}
	if tok := bearer(h.Get("Authorization")); tok != "" {
		out = append(out, offer{SchemeToken, "Authorization", tok})
	}
	if tok := strings.TrimSpace(q.Get("token")); tok != "" {
		out = append(out, offer{SchemeToken, "token query parameter", tok})
	}
	return out, errs
}

// bearer extracts the token of "Bearer <token>" (scheme case-insensitive).
func bearer(h string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// verify returns the index of the registry the offer matches, or an error
// saying why it matches none.
func (a *Authenticator) verify(o offer, body []byte) (int, error) {
	if !a.uses(o.scheme) {
		kind := ErrBadSignature
		if o.scheme == SchemeToken {
			kind = ErrBadToken
		}
		return -1, &Error{Kind: kind, Header: o.where, Reason: fmt.Sprintf("no registry uses the %s scheme", o.scheme)}
	}
	var found int
	switch o.scheme {
	case SchemeGitHub:
		mac, err := parseSignature(SchemeGitHub, o.value)
		if err != nil {
			return -1, err
		}
		found = a.matchHMAC(SchemeGitHub, sha256.New, body, mac)
	case SchemeNexus:
		mac, err := parseSignature(SchemeNexus, o.value)
		if err != nil {
			return -1, err
		}
		found = a.matchHMAC(SchemeNexus, sha1.New, body, mac)
	case SchemeJFrog:
		if strings.TrimSpace(o.value) == "" {
			return -1, &Error{Kind: ErrMalformedSignature, Header: HeaderJFrog, Reason: "is empty; want the secret token or the hex HMAC-SHA256 of the body"}
		}
		found = a.matchJFrog(strings.TrimSpace(o.value), body)
	default:
		found = a.matchToken(o.value)
	}
	if found >= 0 {
		return found, nil
	}
	switch o.scheme {
	case SchemeToken:
		return -1, &Error{Kind: ErrBadToken, Header: o.where, Reason: "the token matches no registry using the token scheme"}
	case SchemeJFrog:
		return -1, &Error{Kind: ErrBadSignature, Header: o.where,
			Reason: "matches neither the secret token nor the HMAC-SHA256 of the body for any registry using the jfrog scheme: a wrong secret, or the body was changed after signing"}
	}
	return -1, &Error{Kind: ErrBadSignature, Header: o.where,
		Reason: fmt.Sprintf("the signature matches no secret of the registries using the %s scheme: a wrong secret, or the body was changed after signing", o.scheme)}
}

// parseSignature decodes the signature header value of a scheme: for
// github "sha256=" and 64 hex digits, for nexus 40 hex digits. The error is
// an *Error of kind ErrMalformedSignature with a specific reason; it never
// includes the value. jfrog and token values have no form to check.
func parseSignature(s Scheme, value string) ([]byte, error) {
	value = strings.TrimSpace(value)
	switch s {
	case SchemeGitHub:
		const prefix = "sha256="
		if !strings.HasPrefix(value, prefix) {
			reason := "want sha256=<64 hex digits>; the sha256= prefix is missing"
			if strings.HasPrefix(value, "sha1=") {
				reason = "holds an HMAC-SHA1 signature; want sha256=<64 hex digits>"
			}
			return nil, &Error{Kind: ErrMalformedSignature, Header: HeaderGitHub, Reason: reason}
		}
		return decodeHex(HeaderGitHub, value[len(prefix):], sha256.Size)
	case SchemeNexus:
		return decodeHex(HeaderNexus, value, sha1.Size)
	}
	return nil, fmt.Errorf("scheme %q has no signature header to parse", s)
}

func decodeHex(header, s string, size int) ([]byte, error) {
	if len(s) != 2*size {
		return nil, &Error{Kind: ErrMalformedSignature, Header: header, Reason: fmt.Sprintf("the signature has %d characters, want %d hex digits", len(s), 2*size)}
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, &Error{Kind: ErrMalformedSignature, Header: header, Reason: "the signature is not hexadecimal"}
	}
	return b, nil
}

// matchHMAC compares mac with the HMAC of body under every secret of every
// registry of the scheme, and returns the first registry that matched.
func (a *Authenticator) matchHMAC(s Scheme, h func() hash.Hash, body, mac []byte) int {
	found := -1
	for i, r := range a.registries {
		if r.Scheme != s {
			continue
		}
		for _, k := range r.keys {
			m := hmac.New(h, k)
			m.Write(body)
			if hmac.Equal(m.Sum(nil), mac) && found < 0 {
				found = i
			}
		}
	}
	return found
}

// matchJFrog accepts the secret as is (classic webhooks) or the hex
// HMAC-SHA256 of the body (payload signing on). Both comparisons are made
// for every secret, so the time does not say which form matched.
func (a *Authenticator) matchJFrog(value string, body []byte) int {
	sum := sha256.Sum256([]byte(value))
	mac, err := hex.DecodeString(value)
	if err != nil || len(mac) != sha256.Size {
		mac = nil // hmac.Equal is false for any MAC against nil
	}
	found := -1
	for i, r := range a.registries {
		if r.Scheme != SchemeJFrog {
			continue
		}
		for j, k := range r.keys {
			classic := subtle.ConstantTimeCompare(sum[:], r.hashed[j][:]) == 1
			m := hmac.New(sha256.New, k)
			m.Write(body)
			signed := hmac.Equal(m.Sum(nil), mac)
			if (classic || signed) && found < 0 {
				found = i
			}
		}
	}
	return found
}

// matchToken compares the SHA-256 of tok with every token of every
// registry of the token scheme.
func (a *Authenticator) matchToken(tok string) int {
	sum := sha256.Sum256([]byte(tok))
	found := -1
	for i, r := range a.registries {
		if r.Scheme != SchemeToken {
			continue
		}
		for _, t := range r.hashed {
			if subtle.ConstantTimeCompare(sum[:], t[:]) == 1 && found < 0 {
				found = i
			}
		}
	}
	return found
}
