// Package signature signs and verifies webhook requests the Standard
// Webhooks way (https://www.standardwebhooks.com/):
//
//	webhook-id:        the message id (regtrigger's task id, stable across retries)
//	webhook-timestamp: Unix seconds
//	webhook-signature: v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>
//
// Secrets are written "whsec_" followed by the base64 of the key bytes.
// During a rotation a request carries one signature per secret, separated
// by spaces, and a verifier accepts the request if any of them matches.
package signature

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Prefix starts every secret.
const Prefix = "whsec_"

// Key sizes accepted, in bytes: the spec's range for HMAC secrets ("at
// least 24 bytes (192 bits, 512 maximum)"). Shorter keys are refused, not
// merely warned about: `regtrigger secret` makes 32-byte keys.
const (
	MinKeyBytes = 24
	MaxKeyBytes = 64
)

// DefaultTolerance is how far a timestamp may be from now when verifying.
const DefaultTolerance = 5 * time.Minute

// Secret is a decoded signing key.
type Secret []byte

// Errors of Verify and ParseSecret.
var (
	ErrSecret    = errors.New("invalid signing secret")
	ErrNoMatch   = errors.New("no signature matches")
	ErrTimestamp = errors.New("timestamp outside the tolerance")
	ErrMissing   = errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
)

// ParseSecret decodes a "whsec_<base64>" secret: the prefix is required,
// the rest is standard base64 (with padding) of MinKeyBytes to MaxKeyBytes
// bytes. CR and LF are skipped, as encoding/base64 does, so a secret read
// with its line ending parses. Errors wrap ErrSecret and never contain the
// secret.
func ParseSecret(s string) (Secret, error) {
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return nil, fmt.Errorf("%w: it must start with %q (generate one with `regtrigger secret`)", ErrSecret, Prefix)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: the part after %q is not standard base64", ErrSecret, Prefix)
	}
	if len(key) < MinKeyBytes || len(key) > MaxKeyBytes {
		return nil, fmt.Errorf("%w: the key is %d bytes, use %d to %d", ErrSecret, len(key), MinKeyBytes, MaxKeyBytes)
	}
	return Secret(key), nil
}

// GenerateSecret returns a new random secret of 32 bytes, in whsec_ form.
func GenerateSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return Prefix + base64.StdEncoding.EncodeToString(b), nil
}

// signed is the start of the signed message: id + "." + ts + ".", made
// once for all the secrets (the body follows it).
func signed(id, ts string) []byte {
	b := make([]byte, 0, len(id)+len(ts)+2)
	b = append(b, id...)
	b = append(b, '.')
	b = append(b, ts...)
	return append(b, '.')
}

// appendSig appends the base64 HMAC-SHA256 with key of the message
// (prefix, then body) to dst.
func appendSig(dst []byte, key Secret, prefix, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(prefix)
	m.Write(body)
	return base64.StdEncoding.AppendEncode(dst, m.Sum(nil))
}

// entryLen is the length of one "v1,<sig>" entry: padded base64 of a
// SHA-256 MAC.
const entryLen = len("v1,") + (sha256.Size+2)/3*4

// Sign returns the webhook-signature header value: "v1,<sig>" for each
// secret, in order, separated by spaces (two during a rotation). ts is
// signed as Unix seconds, the webhook-timestamp value; with no secrets the
// result is "".
func Sign(secrets []Secret, id string, ts time.Time, body []byte) string {
	if len(secrets) == 0 {
		return ""
	}
	var stamp [20]byte // Unix seconds
	prefix := signed(id, string(strconv.AppendInt(stamp[:0], ts.Unix(), 10)))
	var buf [2*entryLen + 1]byte // room for two entries and a space, on the stack
	out := buf[:0]
	for i, s := range secrets {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, "v1,"...)
		out = appendSig(out, s, prefix, body)
	}
	return string(out)
}

// Verify checks a request: ts (the webhook-timestamp value, Unix seconds)
// must be within tolerance of now, either way (tolerance <= 0 means
// DefaultTolerance), and one of the v1 signatures in header (the
// webhook-signature value) must match one of the secrets. Entries of other
// versions (v1a, ...) are skipped. Comparisons are constant-time.
//
// Errors: ErrMissing (an empty id, ts or header), ErrTimestamp (wrapped,
// with how far off it is), ErrNoMatch.
func Verify(secrets []Secret, id, ts string, body []byte, header string, now time.Time, tolerance time.Duration) error {
	if id == "" || ts == "" || header == "" {
		return ErrMissing
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not Unix seconds", ErrTimestamp, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %v away from now", ErrTimestamp, d.Round(time.Second))
	}
	prefix := signed(id, ts)
	for _, s := range secrets {
		want := appendSig(nil, s, prefix, body)
		for _, part := range strings.Fields(header) {
			version, sig, ok := strings.Cut(part, ",")
			if !ok || version != "v1" {
				continue
			}
			if hmac.Equal([]byte(sig), want) {
				return nil
			}
		}
	}
	return ErrNoMatch
}
