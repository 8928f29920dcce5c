package main

// End-to-end tests of sender authentication: signed GHCR and Nexus
// requests and the Event Grid handshake through the real `regtrigger
// serve` (helpers in e2e_test.go).

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	e2eGitHubSecret = "e2e-ghcr-secret-0123456789"
	e2eNexusSecret  = "e2e-nexus-secret-0123456789"
	payloads        = "../../internal/registry/testdata/registry-payloads/"
)

func hmacHex(h func() hash.Hash, key string, body []byte) string {
	m := hmac.New(h, []byte(key))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func readPayload(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(payloads + path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServeAuthenticatesSignedRegistries(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "rt.db"),
		"--registry", "ghcr=github:"+e2eGitHubSecret,
		"--registry", "nexus=nexus:"+e2eNexusSecret+" max-age=30m")

	ghcr := readPayload(t, "ghcr/package-create-ghcr-real-keel.json")
	// The real Nexus body, with its time made current so that the replay
	// bound (30 minutes here) lets it through.
	nexus := readPayload(t, "nexus/component-created-docker-real-fluxrecv.json")
	nexus = bytes.Replace(nexus, []byte("2020-04-05T21:49:44.219+0000"), []byte(time.Now().UTC().Format("2006-01-02T15:04:05.000-0700")), 1)
	badSig := "sha256=" + hmacHex(sha256.New, "not-the-secret-0123456789", ghcr)

	tests := []struct {
		name   string
		body   []byte
		header []string
		sender string // who it authenticates as; "" for a 401
	}{
		{"ghcr signed", ghcr, []string{"X-GitHub-Event", "package", "X-Hub-Signature-256", "sha256=" + hmacHex(sha256.New, e2eGitHubSecret, ghcr)}, "ghcr"},
		{"nexus signed", nexus, []string{"X-Nexus-Webhook-Id", "rm:repository:component", "X-Nexus-Webhook-Signature", hmacHex(sha1.New, e2eNexusSecret, nexus)}, "nexus"},
		{"ghcr bad signature", ghcr, []string{"X-GitHub-Event", "package", "X-Hub-Signature-256", badSig}, ""},
		{"nexus signature of another body", nexus, []string{"X-Nexus-Webhook-Signature", hmacHex(sha1.New, e2eNexusSecret, ghcr)}, ""},
		{"ghcr secret as a bearer token", ghcr, []string{"Authorization", "Bearer " + e2eGitHubSecret}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, ans := s.postBody(t, "/v1/notify", tt.body, "", tt.header...)
			if tt.sender == "" {
				if status != http.StatusUnauthorized || ans["error"] == nil {
					t.Fatalf("status %d, want 401: %v", status, ans)
				}
				return
			}
			// 202 once the GHCR and Nexus parsers are in; 415 before them.
			t.Logf("status %d: %v", status, ans)
			if status == http.StatusUnauthorized || status == http.StatusForbidden {
				t.Fatalf("status %d: %v", status, ans)
			}
			s.waitLog(t, `"sender":"`+tt.sender+`"`, 5*time.Second)
		})
	}
	for _, leak := range []string{e2eGitHubSecret, e2eNexusSecret, badSig, badSig[7:]} {
		if strings.Contains(s.logText(), leak) {
			t.Errorf("serve log holds a secret or a presented signature %q", leak)
		}
	}
}

func TestServeAnswersEventGridHandshakes(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "rt.db"))
	req, err := http.NewRequest(http.MethodOptions, s.addr+"/v1/notify?token="+e2eToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("WebHook-Request-Origin", "eventgrid.azure.net")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("WebHook-Allowed-Origin") != "eventgrid.azure.net" || resp.Header.Get("WebHook-Allowed-Rate") != "*" {
		t.Errorf("OPTIONS: status %d, headers %v", resp.StatusCode, resp.Header)
	}

	validation := []byte(`[{"id":"2d1781af","topic":"/subscriptions/x","data":{"validationCode":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6"},"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","eventTime":"2018-01-25T22:12:19.4556811Z","dataVersion":"1"}]`)
	status, ans := s.postBody(t, "/v1/notify?token="+e2eToken, validation, "")
	if status != http.StatusOK || ans["validationResponse"] != "512d38b6-c7b8-40c8-89fe-f46f9e9622b6" {
		t.Errorf("validation event: %d %v", status, ans)
	}
	if status, _ := s.postBody(t, "/v1/notify", validation, ""); status != http.StatusUnauthorized {
		t.Errorf("validation event without a token: %d", status)
	}
}

func TestServeRefusesBadRegistrySpecs(t *testing.T) {
	const secret = "a-secret-that-must-not-be-echoed"
	tests := []struct {
		name string
		spec string
		want string
	}{
		{"short secret", "ghcr=github:short", `registry "ghcr": secret 1 is shorter than 16 characters`},
		{"two schemes", "x=github:" + secret + ",nexus:" + secret + "2", "share one scheme"},
		{"max-age on a token", "hub=" + secret + " max-age=1h", "max-age applies only to"},
		{"bad max-age", "nx=nexus:" + secret + " max-age=soon", "max-age: want a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(t.TempDir(), "rt.db"), "--registry", tt.spec)
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); err == nil || code != 2 {
				t.Fatalf("exit %d (%v), want 2:\n%s", code, err, out)
			}
			if !strings.Contains(string(out), tt.want) || strings.Contains(string(out), secret) {
				t.Errorf("output does not say %q, or echoes the secret:\n%s", tt.want, out)
			}
		})
	}
}
