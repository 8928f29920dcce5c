package receiver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestIndex: GET / tells a person with a browser what this is.
func TestIndex(t *testing.T) {
	r := newRig()
	e := &Endpoint{Service: r.svc, Auth: everyScheme(t)}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		resp := e.Handle(t.Context(), Inbound{Method: method, Path: "/"})
		var ans struct {
			Service   string            `json:"service"`
			Endpoints map[string]string `json:"endpoints"`
		}
		if resp.Status != http.StatusOK || json.Unmarshal(resp.Body, &ans) != nil || ans.Service != "regtrigger" ||
			ans.Endpoints["POST /v1/notify"] == "" || ans.Endpoints["GET /healthz"] == "" {
			t.Errorf("%s /: %d %s", method, resp.Status, resp.Body)
		}
	}
	// POST / is still a notification (a bare function URL).
	if resp := e.Handle(t.Context(), Inbound{Method: http.MethodPost, Path: "/", Body: []byte(`{}`)}); resp.Status != http.StatusUnauthorized {
		t.Errorf("POST / without credentials: %d %s", resp.Status, resp.Body)
	}
}

// TestRefusalsAreLogged: every refused request leaves one log line with
// its request id, the client's address, the status and why.
func TestRefusalsAreLogged(t *testing.T) {
	big := strings.Repeat(" ", MaxBody+1)
	tests := []struct {
		name   string
		method string
		target string
		body   string
		status int
		why    string
	}{
		{"too large", http.MethodPost, "/v1/notify?token=" + tcrToken, big, http.StatusRequestEntityTooLarge, "larger than 1 MiB"},
		{"no credentials", http.MethodPost, "/v1/notify", `{}`, http.StatusUnauthorized, "Authorization"},
		{"unknown path", http.MethodGet, "/favicon.ico", "", http.StatusNotFound, "no such path"},
		{"GET on the notify path", http.MethodGet, "/v1/notify", "", http.StatusMethodNotAllowed, "answer POST and OPTIONS"},
		{"not JSON", http.MethodPost, "/v1/notify?token=" + tcrToken, `<xml/>`, http.StatusBadRequest, "not a JSON object"},
		{"unknown format", http.MethodPost, "/v1/notify?token=" + tcrToken, `{"hello":"world"}`, http.StatusUnsupportedMediaType, "no registry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig()
			e := &Endpoint{Service: r.svc, Auth: everyScheme(t)}
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			req.RemoteAddr = "192.0.2.7:40000"
			w := httptest.NewRecorder()
			e.ServeHTTP(w, req)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			var lines []map[string]any
			sc := bufio.NewScanner(bytes.NewReader(r.logs.Bytes()))
			for sc.Scan() {
				var m map[string]any
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Fatal(err)
				}
				if m["status"] != nil {
					lines = append(lines, m)
				}
			}
			if len(lines) != 1 {
				t.Fatalf("want one refusal line, got %v", lines)
			}
			l := lines[0]
			id, _ := l["request_id"].(string)
			why, _ := l["error"].(string)
			if !strings.HasPrefix(id, "req_") || l["remote"] != "192.0.2.7:40000" || l["status"] != float64(tt.status) || !strings.Contains(why, tt.why) {
				t.Errorf("refusal line %v: want a request id, remote 192.0.2.7:40000, status %d and %q", l, tt.status, tt.why)
			}
		})
	}
}
