package delivery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/record"
)

// standIn is a local stand-in for a chat platform or GitOps receiver: it
// checks a request the way the platform documents (its signature, its
// body's shape) and answers as the platform does, success or error code.
type standIn struct {
	*httptest.Server
	mu   sync.Mutex
	got  []*http.Request
	body [][]byte
}

func newStandIn(t *testing.T, check func(r *http.Request, body []byte) (status int, answer string)) *standIn {
	s := &standIn{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got, s.body = append(s.got, r), append(s.body, body)
		s.mu.Unlock()
		status, answer := check(r, body)
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(s.Close)
	return s
}

const (
	dingSecret   = "SEC0123456789abcdefghijklmnopqrstuvwxyz"
	feishuSecret = "feishu-secret-0123"
	fluxToken    = "flux-token-0123"
)

// The receivers' own checks, written from the platforms' documentation.

func dingtalkStandIn(r *http.Request, body []byte) (int, string) {
	q := r.URL.Query()
	if q.Get("access_token") != "robot" {
		return 200, `{"errcode":300001,"errmsg":"token is not exist"}`
	}
	mac := hmac.New(sha256.New, []byte(dingSecret))
	mac.Write([]byte(q.Get("timestamp") + "\n" + dingSecret))
	if q.Get("sign") != base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
		return 200, `{"errcode":310000,"errmsg":"sign not match"}`
	}
	var m struct {
		MsgType  string `json:"msgtype"`
		Markdown struct{ Title, Text string }
	}
	if json.Unmarshal(body, &m) != nil || m.MsgType != "markdown" || m.Markdown.Text == "" {
		return 200, `{"errcode":40035,"errmsg":"缺少参数 json"}`
	}
	if !strings.Contains(m.Markdown.Text, "release") { // the robot's keyword
		return 200, `{"errcode":310000,"errmsg":"keywords not in content"}`
	}
	return 200, `{"errcode":0,"errmsg":"ok"}`
}

func feishuStandIn(_ *http.Request, body []byte) (int, string) {
	var m struct {
		Timestamp, Sign string
		MsgType         string `json:"msg_type"`
	}
	if json.Unmarshal(body, &m) != nil || m.MsgType != "interactive" {
		return 200, `{"code":9499,"msg":"Bad Request","data":{}}`
	}
	ts, _ := strconv.ParseInt(m.Timestamp, 10, 64)
	mac := hmac.New(sha256.New, []byte(m.Timestamp+"\n"+feishuSecret))
	if m.Sign != base64.StdEncoding.EncodeToString(mac.Sum(nil)) || time.Since(time.Unix(ts, 0)).Abs() > time.Hour {
		return 200, `{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time","data":{}}`
	}
	return 200, `{"StatusCode":0,"StatusMessage":"success","code":0,"data":{},"msg":"success"}`
}

func fluxStandIn(r *http.Request, body []byte) (int, string) {
	mac := hmac.New(sha256.New, []byte(fluxToken))
	mac.Write(body)
	if r.Header.Get("X-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
		return http.StatusUnauthorized, "unable to validate HMAC signature"
	}
	return http.StatusOK, ""
}

func slackStandIn(_ *http.Request, body []byte) (int, string) {
	var m struct {
		Text   string
		Blocks []json.RawMessage
	}
	switch {
	case json.Unmarshal(body, &m) != nil:
		return http.StatusBadRequest, "invalid_payload"
	case m.Text == "" && len(m.Blocks) == 0:
		return http.StatusBadRequest, "no_text"
	}
	return http.StatusOK, "ok"
}

func wecomStandIn(r *http.Request, body []byte) (int, string) {
	if r.URL.Query().Get("key") != "robot" {
		return 200, `{"errcode":93000,"errmsg":"invalid webhook url, hint: [1733000000000000000]"}`
	}
	var m struct {
		MsgType  string `json:"msgtype"`
		Markdown struct{ Content string }
	}
	if json.Unmarshal(body, &m) != nil || m.MsgType != "markdown" || len(m.Markdown.Content) > 4096 {
		return 200, `{"errcode":40008,"errmsg":"invalid message type"}`
	}
	return 200, `{"errcode":0,"errmsg":"ok"}`
}

func teamsStandIn(_ *http.Request, body []byte) (int, string) {
	var m struct {
		Type        string
		Attachments []struct{ ContentType string }
	}
	if json.Unmarshal(body, &m) != nil || m.Type != "message" || len(m.Attachments) != 1 || m.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" {
		return http.StatusBadRequest, `{"error":{"code":"TriggerInputSchemaMismatch","message":"The input body for trigger 'manual' of type 'Request' did not match its schema definition."}}`
	}
	return http.StatusAccepted, ""
}

// TestPlatformsThroughTheGuard delivers to each stand-in through the real
// guarded client, with the explicit allow-list a user would give for a
// receiver on this machine, and checks what the record says.
func TestPlatformsThroughTheGuard(t *testing.T) {
	client, err := outbound.NewClient(outbound.Config{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Timeout: outbound.MaxTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	ding := newStandIn(t, dingtalkStandIn)
	feishu := newStandIn(t, feishuStandIn)
	flux := newStandIn(t, fluxStandIn)
	slack := newStandIn(t, slackStandIn)
	wecom := newStandIn(t, wecomStandIn)
	teams := newStandIn(t, teamsStandIn)
	limited := newStandIn(t, func(*http.Request, []byte) (int, string) { return 200, `{"errcode":130101,"errmsg":"send too fast"}` })

	tests := []struct {
		name    string
		format  payload.Format
		url     string
		secrets []string
		tag     string
		status  record.Status
		class   string
		errText string
	}{
		{name: "dingtalk signed", format: payload.DingTalk, url: ding.URL + "/robot/send?access_token=robot", secrets: []string{dingSecret}, tag: "release-1", status: record.Success},
		{name: "dingtalk without its keyword", format: payload.DingTalk, url: ding.URL + "/robot/send?access_token=robot", secrets: []string{dingSecret}, tag: "v1",
			status: record.Failed, class: record.ClassPlatform, errText: "dingtalk refused the message: error 310000: keywords not in content"},
		{name: "dingtalk wrong secret", format: payload.DingTalk, url: ding.URL + "/robot/send?access_token=robot", secrets: []string{"SEC-not-the-robots-secret"}, tag: "release-1",
			status: record.Failed, class: record.ClassPlatform, errText: "error 310000: sign not match"},
		{name: "dingtalk too fast", format: payload.DingTalk, url: limited.URL + "/robot/send?access_token=robot", tag: "release-1",
			status: record.Retrying, class: record.ClassPlatformLimit, errText: "send too fast"},
		{name: "feishu signed", format: payload.Feishu, url: feishu.URL + "/open-apis/bot/v2/hook/x", secrets: []string{feishuSecret}, status: record.Success},
		{name: "feishu wrong secret", format: payload.Feishu, url: feishu.URL + "/open-apis/bot/v2/hook/x", secrets: []string{"another-secret"},
			status: record.Failed, class: record.ClassPlatform, errText: "error 19021: sign match fail"},
		{name: "flux signed", format: payload.Flux, url: flux.URL + "/hook/0123", secrets: []string{fluxToken}, status: record.Success},
		{name: "flux wrong token", format: payload.Flux, url: flux.URL + "/hook/0123", secrets: []string{"not-the-token"},
			status: record.Failed, class: record.ClassHTTP4xx},
		{name: "slack", format: payload.Slack, url: slack.URL + "/services/T/B/x", status: record.Success},
		{name: "slack refuses another shape", format: payload.TCR, url: slack.URL + "/services/T/B/x", status: record.Failed, class: record.ClassHTTP4xx},
		{name: "wecom", format: payload.WeCom, url: wecom.URL + "/cgi-bin/webhook/send?key=robot", status: record.Success},
		{name: "wecom bad key", format: payload.WeCom, url: wecom.URL + "/cgi-bin/webhook/send?key=gone", status: record.Failed, class: record.ClassPlatform, errText: "error 93000: invalid webhook url"},
		{name: "teams", format: payload.Teams, url: teams.URL + "/workflows/x/triggers/manual/paths/invoke", status: record.Success},
		{name: "teams refuses another shape", format: payload.Slack, url: teams.URL + "/workflows/x", status: record.Failed, class: record.ClassHTTP4xx, errText: "TriggerInputSchemaMismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := testTrigger()
			tr.Format, tr.URL, tr.Secrets, tr.Headers = tt.format, tt.url, tt.secrets, nil
			task := testTask()
			if tt.tag != "" {
				task.Event.Tag = tt.tag
			}
			var logs bytes.Buffer
			e := newEngine(client, nil, &logs)
			e.Triggers, e.Now = FixedTriggers(tr), time.Now
			out := e.Deliver(context.Background(), task)
			r := out.Record
			if r.Status != tt.status || r.ErrorClass != tt.class || !strings.Contains(r.Error, tt.errText) {
				t.Errorf("status %s class %q error %q; want %s %q %q", r.Status, r.ErrorClass, r.Error, tt.status, tt.class, tt.errText)
			}
			for _, s := range tt.secrets {
				if strings.Contains(logs.String(), s) || strings.Contains(r.Error, s) {
					t.Errorf("the secret leaks into the log or record")
				}
			}
		})
	}
	// Platform-signed formats carry no Standard Webhooks signature.
	ding.mu.Lock()
	defer ding.mu.Unlock()
	if h := ding.got[0].Header; h.Get("Webhook-Signature") != "" || h.Get("Webhook-Id") == "" {
		t.Errorf("dingtalk request headers %v", h)
	}
}

func TestTemplateDelivered(t *testing.T) {
	s := &fakeSender{resp: &outbound.Response{Status: 200}}
	tr := testTrigger()
	tr.Format, tr.Template, tr.ContentType = payload.Template, `{"image": {{quote .Name}}, "tag": {{quote .Tag}}}`, ""
	var logs bytes.Buffer
	e := newEngine(s, nil, &logs)
	e.Triggers = FixedTriggers(tr)
	out := e.Deliver(context.Background(), testTask())
	if out.Record.Status != record.Success || string(s.body) != `{"image": "public/nginx", "tag": "v1"}` || s.header.Get("Content-Type") != payload.ContentTypeJSON {
		t.Errorf("record %+v body %s header %v", out.Record, s.body, s.header)
	}
	if s.header.Get("Webhook-Signature") == "" {
		t.Error("a template is signed as Standard Webhooks")
	}
	// A template stored broken (the store is not a file apply validated):
	// a payload error in the record, nothing sent.
	tr.Template = `{{.Nope}}`
	e.Triggers = FixedTriggers(tr)
	s.url = ""
	out = e.Deliver(context.Background(), testTask())
	if out.Record.Status != record.Failed || out.Record.ErrorClass != record.ClassPayload || s.url != "" {
		t.Errorf("broken template: %+v", out.Record)
	}
}
