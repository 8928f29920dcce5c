package receiver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/auth"
	"github.com/regtrigger/regtrigger/internal/event"
)

const (
	tcrToken  = "tcr-token-0123456789abcdef"
	ghSecret  = "ghcr-secret-0123456789-one"
	ghSecret2 = "ghcr-secret-0123456789-two"
	jfSecret  = "jfrog-secret-0123456789-one"
	jfSecret2 = "jfrog-secret-0123456789-two"
	nxSecret  = "nexus-secret-0123456789-one"
	nxSecret2 = "nexus-secret-0123456789-two"
)

var endpointSecrets = []string{tcrToken, ghSecret, ghSecret2, jfSecret, jfSecret2, nxSecret, nxSecret2}

// tcrOccurredAt is occur_at of the TCR fixture.
var tcrOccurredAt = time.Unix(1589106605, 0).UTC()

func payload(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile("../registry/testdata/registry-payloads/" + path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func macHex(h func() hash.Hash, key string, body []byte) string {
	m := hmac.New(h, []byte(key))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func ghSig(key string, body []byte) string { return "sha256=" + macHex(sha256.New, key, body) }

func newAuth(t *testing.T, cfgs ...auth.Config) *auth.Authenticator {
	t.Helper()
	a, err := auth.New(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// everyScheme has one registry of each scheme.
func everyScheme(t *testing.T) *auth.Authenticator {
	return newAuth(t,
		auth.Config{Name: "tcr", Tokens: []string{tcrToken}},
		auth.Config{Name: "ghcr", Scheme: auth.SchemeGitHub, Tokens: []string{ghSecret, ghSecret2}},
		auth.Config{Name: "artifactory", Scheme: auth.SchemeJFrog, Tokens: []string{jfSecret, jfSecret2}},
		auth.Config{Name: "nexus", Scheme: auth.SchemeNexus, Tokens: []string{nxSecret, nxSecret2}},
	)
}

// logLines returns the JSON log lines of one request.
func logLines(t *testing.T, logs *bytes.Buffer, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(logs.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Bytes(), err)
		}
		if m["request_id"] == id {
			out = append(out, m)
		}
	}
	return out
}

// senderOf is the registry a request was received from, as Receive logged it.
func senderOf(t *testing.T, logs *bytes.Buffer, id string) string {
	for _, m := range logLines(t, logs, id) {
		if s, ok := m["sender"].(string); ok && m["msg"] != "sender authenticated" {
			return s
		}
	}
	return ""
}

func TestEndpointAuthSchemes(t *testing.T) {
	ghcr := payload(t, "ghcr/package-published-docker-octokit.json")
	jfrog := payload(t, "jfrog-artifactory/docker-pushed.json")
	nexus := payload(t, "nexus/component-created-docker-real-fluxrecv.json")
	nexusAsset := payload(t, "nexus/asset-created-doc.json")
	azure := payload(t, "azure-acr/push.json")
	eventGrid := payload(t, "azure-acr/eventgrid-ImagePushed-eventgridschema.json")
	changed := func(b []byte) []byte { return bytes.Replace(b, []byte(`"docker"`), []byte(`"dockex"`), 1) }
	tests := []struct {
		name   string
		body   []byte
		header []string
		query  string
		sender string // the registry it authenticates as; "" for a 401
		reason string // part of the 401 detail
	}{
		{name: "ghcr", body: ghcr, header: []string{auth.HeaderGitHub, ghSig(ghSecret, ghcr)}, sender: "ghcr"},
		{name: "ghcr rotation secret", body: ghcr, header: []string{auth.HeaderGitHub, ghSig(ghSecret2, ghcr)}, sender: "ghcr"},
		{name: "ghcr wrong secret", body: ghcr, header: []string{auth.HeaderGitHub, ghSig(nxSecret, ghcr)}, reason: "wrong secret"},
		{name: "ghcr body altered after signing", body: changed(ghcr), header: []string{auth.HeaderGitHub, ghSig(ghSecret, ghcr)}, reason: "body was changed"},
		{name: "ghcr missing signature", body: ghcr, header: []string{"X-GitHub-Event", "package"}, reason: "no credentials"},
		{name: "ghcr prefix missing", body: ghcr, header: []string{auth.HeaderGitHub, macHex(sha256.New, ghSecret, ghcr)}, reason: "sha256= prefix is missing"},
		{name: "ghcr not hex", body: ghcr, header: []string{auth.HeaderGitHub, "sha256=" + strings.Repeat("x", 64)}, reason: "not hexadecimal"},
		{name: "ghcr wrong length", body: ghcr, header: []string{auth.HeaderGitHub, ghSig(ghSecret, ghcr) + "00"}, reason: "66 characters, want 64"},
		{name: "ghcr legacy sha1 only", body: ghcr, header: []string{auth.HeaderGitHubSHA1, "sha1=" + macHex(sha1.New, ghSecret, ghcr)}, reason: "legacy"},
		{name: "ghcr signed as nexus", body: ghcr, header: []string{auth.HeaderNexus, macHex(sha1.New, ghSecret, ghcr)}, reason: "nexus scheme"},

		{name: "jfrog classic token", body: jfrog, header: []string{auth.HeaderJFrog, jfSecret}, sender: "artifactory"},
		{name: "jfrog payload signing", body: jfrog, header: []string{auth.HeaderJFrog, macHex(sha256.New, jfSecret, jfrog)}, sender: "artifactory"},
		{name: "jfrog rotation secret signed", body: jfrog, header: []string{auth.HeaderJFrog, macHex(sha256.New, jfSecret2, jfrog)}, sender: "artifactory"},
		{name: "jfrog wrong secret", body: jfrog, header: []string{auth.HeaderJFrog, ghSecret}, reason: "jfrog scheme"},
		{name: "jfrog body altered after signing", body: changed(jfrog), header: []string{auth.HeaderJFrog, macHex(sha256.New, jfSecret, jfrog)}, reason: "body was changed"},
		{name: "jfrog empty header", body: jfrog, header: []string{auth.HeaderJFrog, ""}, reason: "empty"},

		{name: "nexus component", body: nexus, header: []string{auth.HeaderNexus, macHex(sha1.New, nxSecret, nexus), "X-Nexus-Webhook-Id", "rm:repository:component"}, sender: "nexus"},
		{name: "nexus asset, rotation secret", body: nexusAsset, header: []string{auth.HeaderNexus, macHex(sha1.New, nxSecret2, nexusAsset)}, sender: "nexus"},
		{name: "nexus wrong secret", body: nexus, header: []string{auth.HeaderNexus, macHex(sha1.New, jfSecret, nexus)}, reason: "nexus scheme"},
		{name: "nexus body altered after signing", body: changed(nexus), header: []string{auth.HeaderNexus, macHex(sha1.New, nxSecret, nexus)}, reason: "body was changed"},
		{name: "nexus sha256 signature", body: nexus, header: []string{auth.HeaderNexus, macHex(sha256.New, nxSecret, nexus)}, reason: "64 characters, want 40"},
		{name: "nexus signed in the github header", body: nexus, header: []string{auth.HeaderGitHub, "sha256=" + macHex(sha1.New, nxSecret, nexus)}, reason: "40 characters, want 64"},

		{name: "azure webhook with a bearer token", body: azure, header: []string{"Authorization", "Bearer " + tcrToken}, sender: "tcr"},
		{name: "event grid with ?token=", body: eventGrid, query: "token=" + tcrToken, sender: "tcr"},
		{name: "event grid with a wrong token", body: eventGrid, query: "token=" + strings.Repeat("z", 20), reason: "token query parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig()
			e := &Endpoint{Service: r.svc, Auth: everyScheme(t)}
			h := http.Header{}
			for i := 0; i+1 < len(tt.header); i += 2 {
				h.Add(tt.header[i], tt.header[i+1])
			}
			q, _ := url.ParseQuery(tt.query)
			const id = "req_auth"
			resp := e.Handle(context.Background(), Inbound{ID: id, Method: http.MethodPost, Path: "/v1/notify", Header: h, Query: q, Body: tt.body})
			if tt.sender != "" {
				// Past authentication the answer depends on the parsers and
				// on the fixture's age (403 stale): only the sender is asserted.
				if resp.Status == http.StatusUnauthorized {
					t.Fatalf("refused: %d %s", resp.Status, resp.Body)
				}
				if got := senderOf(t, r.logs, id); got != tt.sender {
					t.Errorf("received from %q, want %q (status %d)", got, tt.sender, resp.Status)
				}
				return
			}
			if resp.Status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", resp.Status, resp.Body)
			}
			var p Problem
			if err := json.Unmarshal(resp.Body, &p); err != nil || !strings.Contains(p.Detail, tt.reason) {
				t.Errorf("detail %q does not say %q (%v)", p.Detail, tt.reason, err)
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("a 401 without WWW-Authenticate")
			}
			if len(r.queue.tasks) != 0 || r.trig.calls != 0 {
				t.Error("a refused notification reached the triggers or the queue")
			}
			leaks := append([]string{}, endpointSecrets...)
			for i := 1; i < len(tt.header); i += 2 {
				leaks = append(leaks, tt.header[i])
			}
			for _, v := range q {
				leaks = append(leaks, v...)
			}
			for _, s := range leaks {
				if len(s) >= 8 && (bytes.Contains(resp.Body, []byte(s)) || strings.Contains(r.logs.String(), s)) {
					t.Errorf("answer or log holds a secret or a presented value %q:\n%s\n%s", s, resp.Body, r.logs)
				}
			}
			if lines := logLines(t, r.logs, id); len(lines) != 1 || lines[0]["msg"] != "notification refused" || lines[0]["status"] != float64(401) {
				t.Errorf("log lines %v", lines)
			}
		})
	}
}

// clockDedupe is a Dedupe that expires keys on the rig's clock, so tests
// see what the ttl passed to Claim does.
type clockDedupe struct {
	mu   sync.Mutex
	now  func() time.Time
	keys map[string]time.Time
	ttls []time.Duration
}

func (d *clockDedupe) Claim(_ context.Context, k string, ttl time.Duration) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ttls = append(d.ttls, ttl)
	if exp, ok := d.keys[k]; ok && d.now().Before(exp) {
		return false, nil
	}
	d.keys[k] = d.now().Add(ttl)
	return true, nil
}

func (d *clockDedupe) Release(_ context.Context, k string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.keys, k)
	return nil
}

func TestEndpointReplay(t *testing.T) {
	body := tcrBody(t) // signed as if by a registry of each scheme; the TCR body is one regtrigger parses
	type step struct {
		after  time.Duration // the clock, relative to the body's occur_at
		status int
		tasks  int  // tasks in the queue after the step
		dup    bool // the answer marks the event duplicate
		detail string
	}
	tests := []struct {
		name  string
		cfg   auth.Config
		sign  func(http.Header)
		steps []step
	}{
		{"github: within the window a duplicate, after it refused",
			auth.Config{Name: "ghcr", Scheme: auth.SchemeGitHub, Tokens: []string{ghSecret}},
			func(h http.Header) { h.Set(auth.HeaderGitHub, ghSig(ghSecret, body)) },
			[]step{
				{after: time.Minute, status: http.StatusAccepted, tasks: 1},
				{after: 5 * time.Minute, status: http.StatusAccepted, tasks: 1, dup: true},
				{after: 10*time.Minute + time.Second, status: http.StatusForbidden, tasks: 1, detail: "10m1s old, more than this registry's max age of 10m0s"},
				{after: 30 * 24 * time.Hour, status: http.StatusForbidden, tasks: 1, detail: "a replayed notification"},
			}},
		{"nexus: the registry clock far ahead is refused",
			auth.Config{Name: "nexus", Scheme: auth.SchemeNexus, Tokens: []string{nxSecret}},
			func(h http.Header) { h.Set(auth.HeaderNexus, macHex(sha1.New, nxSecret, body)) },
			[]step{
				{after: -11 * time.Minute, status: http.StatusForbidden, tasks: 0, detail: "11m0s ahead of this server's clock"},
				{after: -9 * time.Minute, status: http.StatusAccepted, tasks: 1},
				// The key lives until the event is too old (9+10 min), past the 10 min window.
				{after: 9 * time.Minute, status: http.StatusAccepted, tasks: 1, dup: true},
			}},
		{"jfrog signed: a longer max age keeps the key as long",
			auth.Config{Name: "jfrog", Scheme: auth.SchemeJFrog, Tokens: []string{jfSecret}, MaxAge: time.Hour},
			func(h http.Header) { h.Set(auth.HeaderJFrog, macHex(sha256.New, jfSecret, body)) },
			[]step{
				{after: time.Minute, status: http.StatusAccepted, tasks: 1},
				{after: 45 * time.Minute, status: http.StatusAccepted, tasks: 1, dup: true},
				{after: 61 * time.Minute, status: http.StatusForbidden, tasks: 1, detail: "max age of 1h0m0s"},
			}},
		{"max-age off",
			auth.Config{Name: "ghcr", Scheme: auth.SchemeGitHub, Tokens: []string{ghSecret}, MaxAge: auth.MaxAgeOff},
			func(h http.Header) { h.Set(auth.HeaderGitHub, ghSig(ghSecret, body)) },
			[]step{{after: 30 * 24 * time.Hour, status: http.StatusAccepted, tasks: 1}}},
		{"tokens have no max age: they do not cover the body",
			auth.Config{Name: "tcr", Tokens: []string{tcrToken}},
			func(h http.Header) { h.Set("Authorization", "Bearer "+tcrToken) },
			[]step{{after: 30 * 24 * time.Hour, status: http.StatusAccepted, tasks: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig()
			var now time.Time
			r.svc.Now = func() time.Time { return now }
			dd := &clockDedupe{now: r.svc.Now, keys: map[string]time.Time{}}
			r.svc.Dedupe = dd
			e := &Endpoint{Service: r.svc, Auth: newAuth(t, tt.cfg)}
			for i, st := range tt.steps {
				now = tcrOccurredAt.Add(st.after)
				h := http.Header{}
				tt.sign(h)
				resp := e.Handle(context.Background(), Inbound{Method: http.MethodPost, Path: "/v1/notify", Header: h, Body: body})
				if resp.Status != st.status {
					t.Fatalf("step %d (%v): status %d, want %d: %s", i+1, st.after, resp.Status, st.status, resp.Body)
				}
				if len(r.queue.tasks) != st.tasks {
					t.Fatalf("step %d (%v): %d tasks, want %d", i+1, st.after, len(r.queue.tasks), st.tasks)
				}
				if st.status == http.StatusAccepted {
					if a := decodeAccepted(t, resp); a.Events[0].Duplicate != st.dup {
						t.Fatalf("step %d (%v): duplicate %v, want %v", i+1, st.after, a.Events[0].Duplicate, st.dup)
					}
				}
				if !strings.Contains(string(resp.Body), st.detail) {
					t.Errorf("step %d: answer %s does not say %q", i+1, resp.Body, st.detail)
				}
			}
		})
	}
}

func TestClaimTTL(t *testing.T) {
	window := 10 * time.Minute
	now := tcrOccurredAt
	tests := []struct {
		name     string
		occurred time.Time
		maxAge   time.Duration
		want     time.Duration
	}{
		{"no max age", now.Add(-time.Minute), 0, window},
		{"max age equal to the window, event a minute old", now.Add(-time.Minute), window, window},
		{"longer max age", now.Add(-time.Minute), time.Hour, 59 * time.Minute},
		{"event ahead of the clock", now.Add(5 * time.Minute), window, 15 * time.Minute},
		{"no registry time", time.Time{}, time.Hour, window},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := event.Event{Source: "tcr", OccurredAt: tt.occurred}
			if got := claimTTL(ev, now, tt.maxAge, window); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if err := checkAge(nil, now, tt.maxAge); err != nil {
				t.Errorf("no events: %v", err)
			}
		})
	}
}

func TestEndpointWebhookValidation(t *testing.T) {
	a := newAuth(t, auth.Config{Name: "eventgrid", Tokens: []string{tcrToken}}, auth.Config{Name: "ghcr", Scheme: auth.SchemeGitHub, Tokens: []string{ghSecret}})
	tests := []struct {
		name     string
		auth     *auth.Authenticator
		path     string
		header   []string
		loopback bool
		status   int
		origin   string // the WebHook-Allowed-Origin answered
	}{
		{"event grid", a, "/v1/notify?token=" + tcrToken, []string{"WebHook-Request-Origin", "eventgrid.azure.net"}, false, http.StatusOK, "eventgrid.azure.net"},
		{"forced source path", a, "/v1/notify/acr?token=" + tcrToken, []string{"WebHook-Request-Origin", "eventgrid.azure.net", "WebHook-Request-Rate", "120"}, false, http.StatusOK, "eventgrid.azure.net"},
		{"callback is not followed", a, "/?token=" + tcrToken, []string{"WebHook-Request-Origin", "eventgrid.azure.net", "WebHook-Request-Callback", "https://169.254.169.254/x"}, false, http.StatusOK, "eventgrid.azure.net"},
		{"bearer token", a, "/v1/notify", []string{"Authorization", "Bearer " + tcrToken, "WebHook-Request-Origin", "example.com"}, false, http.StatusOK, "example.com"},
		{"no token", a, "/v1/notify", []string{"WebHook-Request-Origin", "eventgrid.azure.net"}, false, http.StatusUnauthorized, ""},
		{"a signature cannot cover an empty OPTIONS", a, "/v1/notify", []string{"WebHook-Request-Origin", "eventgrid.azure.net", auth.HeaderGitHub, ghSig(ghSecret, nil)}, false, http.StatusOK, "eventgrid.azure.net"},
		{"no origin: not a handshake", a, "/v1/notify?token=" + tcrToken, nil, false, http.StatusBadRequest, ""},
		{"origin with a control character", a, "/v1/notify?token=" + tcrToken, []string{"WebHook-Request-Origin", "evil.example\r\nSet-Cookie: x=y"}, false, http.StatusBadRequest, ""},
		{"origin too long", a, "/v1/notify?token=" + tcrToken, []string{"WebHook-Request-Origin", strings.Repeat("a", 256)}, false, http.StatusBadRequest, ""},
		{"loopback-only mode, local client", newAuth(t), "/v1/notify", []string{"WebHook-Request-Origin", "localhost"}, true, http.StatusOK, "localhost"},
		{"loopback-only mode, remote client", newAuth(t), "/v1/notify", []string{"WebHook-Request-Origin", "eventgrid.azure.net"}, false, http.StatusForbidden, ""},
		{"healthz", a, "/healthz?token=" + tcrToken, []string{"WebHook-Request-Origin", "eventgrid.azure.net"}, false, http.StatusMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig()
			e := &Endpoint{Service: r.svc, Auth: tt.auth}
			u, _ := url.Parse(tt.path)
			h := http.Header{}
			for i := 0; i+1 < len(tt.header); i += 2 {
				h.Add(tt.header[i], tt.header[i+1])
			}
			resp := e.Handle(context.Background(), Inbound{Method: http.MethodOptions, Path: u.Path, Query: u.Query(), Header: h, Loopback: tt.loopback})
			if resp.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tt.status, resp.Body)
			}
			if got := resp.Header.Get("WebHook-Allowed-Origin"); got != tt.origin {
				t.Errorf("WebHook-Allowed-Origin %q, want %q", got, tt.origin)
			}
			if tt.status == http.StatusOK && resp.Header.Get("WebHook-Allowed-Rate") != "*" {
				t.Errorf("WebHook-Allowed-Rate %q", resp.Header.Get("WebHook-Allowed-Rate"))
			}
			if r.trig.calls != 0 || len(r.queue.tasks) != 0 {
				t.Error("the handshake reached the triggers or the queue")
			}
		})
	}
}

func TestEndpointWebhookValidationOverHTTP(t *testing.T) {
	r := newRig()
	srv := httptest.NewServer(&Endpoint{Service: r.svc, Auth: newAuth(t, auth.Config{Name: "eventgrid", Tokens: []string{tcrToken}})})
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/v1/notify?token="+tcrToken, nil)
	req.Header.Set("WebHook-Request-Origin", "eventgrid.azure.net")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("WebHook-Allowed-Origin") != "eventgrid.azure.net" || resp.Header.Get("WebHook-Allowed-Rate") != "*" {
		t.Errorf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
}

func TestEndpointEventGridValidation(t *testing.T) {
	const code = "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
	validation := []byte(`[{"id":"2d1781af-3a4c-4d7c-bd0c-e34b19da4e66","topic":"/subscriptions/x","subject":"","data":{"validationCode":"` + code +
		`","validationUrl":"https://rp-eastus2.eventgrid.azure.net/x"},"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","eventTime":"2018-01-25T22:12:19.4556811Z","metadataVersion":"1","dataVersion":"1"}]`)
	a := newAuth(t, auth.Config{Name: "eventgrid", Tokens: []string{tcrToken}}, auth.Config{Name: "ghcr", Scheme: auth.SchemeGitHub, Tokens: []string{ghSecret}})
	tests := []struct {
		name   string
		path   string
		header []string
		body   []byte
		status int
		answer string
	}{
		{"validation with ?token=", "/v1/notify?token=" + tcrToken, []string{"aeg-event-type", "SubscriptionValidation"}, validation, http.StatusOK, `{"validationResponse":"` + code + `"}`},
		{"validation on a forced source path", "/v1/notify/acr?token=" + tcrToken, nil, validation, http.StatusOK, `{"validationResponse":"` + code + `"}`},
		{"validation signed", "/v1/notify", []string{auth.HeaderGitHub, ghSig(ghSecret, validation)}, validation, http.StatusOK, `{"validationResponse":"` + code + `"}`},
		{"validation without a token", "/v1/notify", nil, validation, http.StatusUnauthorized, ""},
		{"validation with a bad token", "/v1/notify?token=" + strings.Repeat("q", 20), nil, validation, http.StatusUnauthorized, ""},
		{"an ordinary notification is not a handshake", "/v1/notify?token=" + tcrToken, nil, tcrBody(t), http.StatusAccepted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig()
			e := &Endpoint{Service: r.svc, Auth: a}
			u, _ := url.Parse(tt.path)
			h := http.Header{}
			for i := 0; i+1 < len(tt.header); i += 2 {
				h.Add(tt.header[i], tt.header[i+1])
			}
			resp := e.Handle(context.Background(), Inbound{Method: http.MethodPost, Path: u.Path, Query: u.Query(), Header: h, Body: tt.body})
			if resp.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tt.status, resp.Body)
			}
			if tt.answer != "" && string(resp.Body) != tt.answer {
				t.Errorf("answer %s, want %s", resp.Body, tt.answer)
			}
			if tt.status != http.StatusAccepted && (r.trig.calls != 0 || len(r.queue.tasks) != 0 || len(r.dedup.keys) != 0) {
				t.Error("the validation event was handled as a notification")
			}
		})
	}
}

func TestEndpointLimits(t *testing.T) {
	r := newRig()
	e := &Endpoint{Service: r.svc, Auth: everyScheme(t)}
	big := bytes.Repeat([]byte("a"), MaxBody+10)
	tests := []struct {
		name   string
		in     Inbound
		status int
		allow  bool // the answer carries Allow: POST, OPTIONS
	}{
		{"too large without credentials is unauthenticated", Inbound{Method: http.MethodPost, Path: "/v1/notify", TooLarge: true}, http.StatusUnauthorized, false},
		{"too large with a token", Inbound{Method: http.MethodPost, Path: "/v1/notify", TooLarge: true, Query: url.Values{"token": {tcrToken}}}, http.StatusRequestEntityTooLarge, false},
		{"too large signed body, cut by the adapter", Inbound{Method: http.MethodPost, Path: "/v1/notify", TooLarge: true, Body: big[:MaxBody+1], Header: http.Header{auth.HeaderGitHub: {ghSig(ghSecret, big)}}}, http.StatusRequestEntityTooLarge, false},
		{"too large signed body, not passed", Inbound{Method: http.MethodPost, Path: "/v1/notify", TooLarge: true, Header: http.Header{auth.HeaderNexus: {macHex(sha1.New, nxSecret, big)}}}, http.StatusRequestEntityTooLarge, false},
		{"too large with a malformed signature", Inbound{Method: http.MethodPost, Path: "/v1/notify", TooLarge: true, Header: http.Header{auth.HeaderGitHub: {"sha256=nope"}}}, http.StatusUnauthorized, false},
		{"GET on the notify path", Inbound{Method: http.MethodGet, Path: "/v1/notify"}, http.StatusMethodNotAllowed, true},
		{"PUT on the root", Inbound{Method: http.MethodPut, Path: "/"}, http.StatusMethodNotAllowed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.Handle(context.Background(), tt.in)
			if resp.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tt.status, resp.Body)
			}
			if got := resp.Header.Get("Allow") == "POST, OPTIONS"; got != tt.allow {
				t.Errorf("Allow %q", resp.Header.Get("Allow"))
			}
		})
	}
}
