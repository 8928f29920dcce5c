package payload

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/regtrigger/regtrigger/internal/signature"
)

// Signing is how a format's requests carry the trigger's secret.
type Signing int

// The signing schemes.
const (
	// StandardWebhooks: webhook-id, webhook-timestamp and webhook-signature
	// headers (package signature); the secret is a whsec_ secret. The
	// registry-shaped formats, raw, dockerhub and template.
	StandardWebhooks Signing = iota
	// NoSigning: the platform authenticates by the URL alone (its key or
	// signature is in the webhook URL); a secret is refused.
	NoSigning
	// DingTalkQuery: timestamp and sign in the URL's query (钉钉 加签).
	DingTalkQuery
	// FeishuBody: timestamp and sign in the body (飞书 签名校验).
	FeishuBody
	// FluxHMAC: X-Signature: sha256=<hex HMAC-SHA256 of the body>.
	FluxHMAC
)

// Signing returns how f's requests are signed.
func (f Format) Signing() Signing {
	switch f {
	case Slack, Teams, WeCom:
		return NoSigning
	case DingTalk:
		return DingTalkQuery
	case Feishu:
		return FeishuBody
	case Flux:
		return FluxHMAC
	}
	return StandardWebhooks
}

// MaxPlatformSecrets is how many secrets the platform-signed formats take:
// those platforms check one signature, so rotation is a switch, not a pair.
const MaxPlatformSecrets = 1

// ValidateSecrets checks a trigger's secrets for format f; the error never
// quotes a secret.
func ValidateSecrets(f Format, secrets []string) error {
	switch sg := f.Signing(); {
	case len(secrets) == 0:
		if f == Flux {
			return errors.New("flux needs the Receiver's token as the secret (the generic-hmac Receiver refuses unsigned requests)")
		}
		return nil
	case sg == NoSigning:
		return fmt.Errorf("%s does not sign requests (the webhook URL carries its key): remove the secret", f)
	case sg == StandardWebhooks:
		for i, s := range secrets {
			if _, err := signature.ParseSecret(s); err != nil {
				return fmt.Errorf("secret %d: %w", i+1, err)
			}
		}
		return nil
	case len(secrets) > MaxPlatformSecrets:
		return fmt.Errorf("%s checks one signature: give one secret", f)
	}
	s := secrets[0]
	switch f {
	case DingTalk:
		if !strings.HasPrefix(s, "SEC") || len(s) < 16 {
			return errors.New("dingtalk: the robot's 加签 secret starts with SEC (the robot's security settings show it)")
		}
	case Feishu, Flux:
		if len(s) < 8 || strings.TrimSpace(s) != s {
			return fmt.Errorf("%s: the secret must be at least 8 characters, without surrounding spaces", f)
		}
	}
	return nil
}

// DingTalkSign is 钉钉's 加签: the timestamp in milliseconds and the
// Base64 HMAC-SHA256 of "timestamp\nsecret" keyed with the secret. It
// returns both as the URL's query parameters take them (not yet escaped).
func DingTalkSign(secret string, now time.Time) (timestamp, sign string) {
	timestamp = strconv.FormatInt(now.UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "\n" + secret))
	return timestamp, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// DingTalkURL is rawURL with DingTalk's timestamp and sign added to its
// query (replacing any already there).
func DingTalkURL(rawURL, secret string, now time.Time) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", errors.New("dingtalk: the URL does not parse")
	}
	ts, sign := DingTalkSign(secret, now)
	q := u.Query()
	q.Set("timestamp", ts)
	q.Set("sign", sign)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// FeishuSign is 飞书's signature: the timestamp in seconds and the Base64
// HMAC-SHA256 of an empty message keyed with "timestamp\nsecret".
func FeishuSign(secret string, now time.Time) (timestamp, sign string) {
	timestamp = strconv.FormatInt(unix(now), 10)
	mac := hmac.New(sha256.New, []byte(timestamp+"\n"+secret))
	return timestamp, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// FluxHeader is the header a Flux generic-hmac Receiver checks.
const FluxHeader = "X-Signature"

// FluxSignature is the value of FluxHeader for body: sha256= and the hex
// HMAC-SHA256 of the body keyed with the Receiver's token.
func FluxSignature(token string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
