package payload

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

// The expected signatures were computed apart from this code, with the
// Python samples of each platform's documentation (DingTalk 加签,
// Feishu 签名校验) and Python's hmac for Flux's X-Signature, on the fixed
// timestamps and secrets below.
func TestPlatformSignatures(t *testing.T) {
	at := time.UnixMilli(1589106605123)
	ts, sign := DingTalkSign("SEC0123456789abcdefghijklmnopqrstuvwxyz", at)
	if ts != "1589106605123" || sign != "Gr6pMS14hvldqv+9uTWyTY7jZ0LN6eMbLsOjxLGz75o=" {
		t.Errorf("dingtalk: %s %s", ts, sign)
	}
	u, err := DingTalkURL("https://oapi.dingtalk.com/robot/send?access_token=abc", "SEC0123456789abcdefghijklmnopqrstuvwxyz", at)
	if err != nil || !strings.Contains(u, "sign=Gr6pMS14hvldqv%2B9uTWyTY7jZ0LN6eMbLsOjxLGz75o%3D") || !strings.Contains(u, "timestamp=1589106605123") || !strings.Contains(u, "access_token=abc") {
		t.Errorf("dingtalk URL %s, %v", u, err)
	}
	ts, sign = FeishuSign("feishu-secret-0123", at)
	if ts != "1589106605" || sign != "8Hj5nraIoIqOb1IQ+5/k+iacTpz5sLHKWuXCkB4t0jw=" {
		t.Errorf("feishu: %s %s", ts, sign)
	}
	if got := FluxSignature("flux-token-0123", []byte(`{"type":"pushImage"}`)); got != "sha256=a8c43a7e5096c82587fc513d57f96dc8fc1bad6f1fd64afd7379c835e720edca" {
		t.Errorf("flux: %s", got)
	}
	// Feishu's signature goes in the body, with its timestamp.
	m := meta
	m.Secret, m.Time = "feishu-secret-0123", at
	body, _, err := Render(Feishu, sample(event.PushImage), m)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Timestamp, Sign string }
	if err := json.Unmarshal(body, &got); err != nil || got.Timestamp != "1589106605" || got.Sign != "8Hj5nraIoIqOb1IQ+5/k+iacTpz5sLHKWuXCkB4t0jw=" {
		t.Errorf("feishu body %s", body)
	}
	if !strings.HasPrefix(string(body), `{"timestamp":"1589106605","sign":`) {
		t.Errorf("the signature should lead the body: %s", body)
	}
}

func TestValidateSecrets(t *testing.T) {
	tests := []struct {
		format  Format
		secrets []string
		want    string // in the error; "" for none
	}{
		{TCR, nil, ""},
		{TCR, []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, ""},
		{TCR, []string{"SEC0123456789abcdef"}, "secret 1"},
		{DockerHub, []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, ""},
		{Slack, []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "slack does not sign requests"},
		{Teams, []string{"x"}, "teams does not sign"},
		{WeCom, []string{"x"}, "wecom does not sign"},
		{WeCom, nil, ""},
		{DingTalk, nil, ""},
		{DingTalk, []string{"SEC0123456789abcdefghijklmnopqrstuvwxyz"}, ""},
		{DingTalk, []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "starts with SEC"},
		{DingTalk, []string{"SEC0123456789abcdef", "SEC0123456789abcdeg"}, "one secret"},
		{Feishu, []string{"feishu-secret-0123"}, ""},
		{Feishu, []string{"short"}, "at least 8"},
		{Flux, nil, "Receiver's token"},
		{Flux, []string{"flux-token-0123"}, ""},
		{Flux, []string{" padded-token "}, "surrounding spaces"},
	}
	for _, tt := range tests {
		err := ValidateSecrets(tt.format, tt.secrets)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s %d secret(s): %v", tt.format, len(tt.secrets), err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s %d secret(s): %v, want %q", tt.format, len(tt.secrets), err, tt.want)
		}
		for _, s := range tt.secrets {
			if err != nil && len(s) > 4 && strings.Contains(err.Error(), s) {
				t.Errorf("the error quotes the secret: %v", err)
			}
		}
	}
}

func TestCheckAnswer(t *testing.T) {
	tests := []struct {
		name      string
		format    Format
		body      string
		code      string // "" and ok: accepted
		ok        bool
		retryable bool
		message   string
	}{
		{name: "slack ok", format: Slack, body: "ok", ok: true},
		{name: "slack refuses in the body", format: Slack, body: "invalid_payload", message: "invalid_payload"},
		{name: "wecom ok", format: WeCom, body: `{"errcode":0,"errmsg":"ok"}`, ok: true},
		{name: "wecom bad key", format: WeCom, body: `{"errcode":93000,"errmsg":"invalid webhook url, hint: [1]"}`, code: "93000", message: "invalid webhook url"},
		{name: "wecom rate limit", format: WeCom, body: `{"errcode":45009,"errmsg":"api freq out of limit"}`, code: "45009", retryable: true},
		{name: "wecom not JSON", format: WeCom, body: `<html>`, message: "not the platform's"},
		{name: "dingtalk ok", format: DingTalk, body: `{"errcode":0,"errmsg":"ok"}`, ok: true},
		{name: "dingtalk sign mismatch", format: DingTalk, body: `{"errcode":310000,"errmsg":"sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}`, code: "310000", message: "sign not match"},
		{name: "dingtalk too fast", format: DingTalk, body: `{"errcode":130101,"errmsg":"send too fast"}`, code: "130101", retryable: true},
		{name: "feishu ok", format: Feishu, body: `{"code":0,"msg":"success","data":{},"StatusCode":0,"StatusMessage":"success"}`, ok: true},
		{name: "feishu older ok", format: Feishu, body: `{"StatusCode":0,"StatusMessage":"success"}`, ok: true},
		{name: "feishu sign mismatch", format: Feishu, body: `{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time","data":{}}`, code: "19021", message: "sign match fail"},
		{name: "feishu keywords", format: Feishu, body: `{"code":19024,"msg":"Key Words Not Found"}`, code: "19024"},
		{name: "feishu frequency", format: Feishu, body: `{"code":11232,"msg":"frequency limited psm[lark.oapi.app_platform_runtime]appID[1]"}`, code: "11232", retryable: true},
		{name: "teams: the status says it all", format: Teams, body: ``, ok: true},
		{name: "tcr: the status says it all", format: TCR, body: `{"errcode":1}`, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckAnswer(tt.format, []byte(tt.body))
			if tt.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var pe *PlatformError
			if !errors.As(err, &pe) {
				t.Fatalf("err %v, want a *PlatformError", err)
			}
			if pe.Code != tt.code || pe.Retryable != tt.retryable || !strings.Contains(pe.Message, tt.message) || pe.Format != tt.format {
				t.Errorf("%+v", pe)
			}
		})
	}
	if got := RefusalText(Teams, []byte(`{"error":{"code":"TriggerInputSchemaMismatch","message":"The input body for trigger 'manual' of type 'Request' did not match its schema definition."}}`)); !strings.HasPrefix(got, "TriggerInputSchemaMismatch The input body") {
		t.Errorf("teams refusal %q", got)
	}
	if got := RefusalText(Slack, []byte("channel_not_found\n")); got != "channel_not_found" {
		t.Errorf("slack refusal %q", got)
	}
	if got := RefusalText(TCR, []byte("anything")); got != "" {
		t.Errorf("a registry-shaped format's receiver body is recorded: %q", got)
	}
	if got := RefusalText(Slack, []byte(strings.Repeat("é", 300))); len(got) > maxMessage+len("…") {
		t.Errorf("refusal text of %d bytes", len(got))
	}
}

func TestChatMessagesEscape(t *testing.T) {
	ev := sample(event.PushImage)
	ev.Repository, ev.Operator = "a<b>&c", "<@U123>"
	body, _, err := Render(Slack, ev, meta)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), "<@U123>") || !strings.Contains(string(body), "&lt;@U123&gt;") || !strings.Contains(string(body), "a&lt;b&gt;&amp;c") {
		t.Errorf("slack mrkdwn not escaped: %s", body)
	}
	ev.Operator = strings.Repeat("长", 3000) // 9,000 bytes
	body, _, err = Render(WeCom, ev, meta)
	if err != nil {
		t.Fatal(err)
	}
	var w wecomMessage
	if err := json.Unmarshal(body, &w); err != nil || len(w.Markdown.Content) > WeComMaxContent || !strings.HasPrefix(w.Markdown.Content, "**Image pushed**") {
		t.Errorf("wecom content of %d bytes: %v", len(w.Markdown.Content), err)
	}
}

func TestDockerHubBody(t *testing.T) {
	body, _, err := Render(DockerHub, sample(event.PushImage), meta)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		PushData struct {
			Tag    string `json:"tag"`
			Pusher string `json:"pusher"`
		} `json:"push_data"`
		Repository struct {
			RepoName string `json:"repo_name"`
			Name     string `json:"name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.PushData.Tag != "v1.10.0" || p.Repository.RepoName != "demo.tencentcloudcr.com/public/team/nginx" {
		t.Errorf("%s", body)
	}
	if !DockerHub.PushOnly() || Slack.PushOnly() {
		t.Error("PushOnly")
	}
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		name, text, ctype string
		want              string // in the error; "" for none
	}{
		{name: "JSON", text: `{"image": {{quote .Name}}, "tag": {{json .Tag}}}`},
		{name: "text", text: `{{.Title}} {{.Name}}:{{.Tag}}`, ctype: "text/plain; charset=utf-8"},
		{name: "+json", text: `{"a":1}`, ctype: "application/vnd.example+json"},
		{name: "empty", text: " ", want: "is empty"},
		{name: "does not parse", text: `{{.Tag`, want: "template:"},
		{name: "no environment", text: `{{env "HOME"}}`, want: `function "env" not defined`},
		{name: "no secret", text: `{{.Secret}}`, want: "can't evaluate field Secret"},
		{name: "not JSON", text: `{"tag": {{.Tag}}}`, want: "not valid JSON"},
		{name: "fails on a chart", text: `{{if not .Digest}}{{index .Tag 99}}{{end}}{}`, want: "on a sample uploadChart event"},
		{name: "bad content type", text: `{}`, ctype: "json;;", want: "content-type"},
		{name: "too large", text: strings.Repeat(`{{printf "%1000s" .Tag}}`, 600), ctype: "text/plain", want: "over 64 KiB"},
		{name: "no loops", text: `{{range 1000000000}}{{end}}{}`, want: "range is not allowed"},
		{name: "no templates calling templates", text: `{{define "a"}}{{template "a"}}{{end}}{}`, want: "define and block are not allowed"},
		{name: "no huge printf width", text: `{{printf "%999999999s" .Tag}}`, ctype: "text/plain", want: "at most 1024"},
		{name: "no printf width from an argument", text: `{{printf "%*s" 999999999 .Tag}}`, ctype: "text/plain", want: "(%*)"},
		{name: "printf within bounds", text: `{{printf "%-20s|%.3s|%5.1f" .Tag .Name 3.14159}}`, ctype: "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm, err := ParseTemplate(tt.text, tt.ctype)
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err %v, want %q", err, tt.want)
			case tt.want == "":
				body, ctype, err := Render(Template, sample(event.DeleteImage), Meta{Template: tm, Trigger: "t", TaskID: "tsk_1"})
				if err != nil || len(body) == 0 || (tt.ctype != "" && ctype != tt.ctype) || (tt.ctype == "" && ctype != ContentTypeJSON) {
					t.Errorf("render: %q %q %v", body, ctype, err)
				}
			}
		})
	}
	if _, _, err := Render(Template, sample(event.PushImage), meta); !errors.Is(err, ErrNoTemplate) {
		t.Errorf("no template: %v", err)
	}
	// The output limit holds at delivery too, for an event bigger than the samples.
	tm, err := ParseTemplate(`{"op": {{quote .Operator}}}`, "")
	if err != nil {
		t.Fatal(err)
	}
	ev := sample(event.PushImage)
	ev.Operator = strings.Repeat("x", MaxTemplateOutput)
	if _, _, err := Render(Template, ev, Meta{Template: tm}); !errors.Is(err, ErrTemplateTooLarge) {
		t.Errorf("oversized output: %v", err)
	}
}

func TestShortDigestAndURL(t *testing.T) {
	for in, want := range map[string]string{"sha256:89a42c3ba15f09a3": "sha256:89a42c3ba15f", "sha256:abc": "sha256:abc", "": "", "nocolon": "nocolon"} {
		if got := ShortDigest(in); got != want {
			t.Errorf("ShortDigest(%q) = %q", in, got)
		}
	}
	if _, err := DingTalkURL("://bad", "SEC0123456789abcdef", time.Now()); err == nil {
		t.Error("a bad URL signed")
	}
	u, _ := DingTalkURL("https://oapi.dingtalk.com/robot/send?access_token=a&timestamp=1&sign=old", "SEC0123456789abcdef", time.UnixMilli(5))
	q, _ := url.Parse(u)
	if q.Query().Get("timestamp") != "5" || len(q.Query()["sign"]) != 1 {
		t.Errorf("the signature is not replaced: %s", u)
	}
}

// FuzzParseTemplate: no template text makes parsing or rendering panic,
// run unbounded, or give a body over the limit.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{`{"a":{{quote .Tag}}}`, `{{range 9}}{{end}}`, `{{printf "%9999s" .Tag}}`, `{{define "x"}}{{end}}`, `{{with .Digest}}{{.}}{{else}}none{{end}}`, `{{index .Tag 0}}`, `{{len .Name}}`} {
		f.Add(s, "text/plain")
	}
	f.Fuzz(func(t *testing.T, text, ctype string) {
		tm, err := ParseTemplate(text, ctype)
		if err != nil {
			return
		}
		body, _, err := Render(Template, sample(event.PushImage), Meta{Template: tm})
		if err == nil && len(body) > MaxTemplateOutput {
			t.Fatalf("%d bytes", len(body))
		}
	})
}
