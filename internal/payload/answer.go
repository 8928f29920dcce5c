package payload

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
)

// PlatformError is a chat platform's refusal in an answer that may look
// like success: WeCom, DingTalk and Feishu answer HTTP 200 with an error
// code in the body, Slack a text that is not "ok".
type PlatformError struct {
	Format Format
	// Code is the platform's error code ("" for Slack's text errors).
	Code string
	// Message is the platform's own message, shortened and on one line.
	Message string
	// Retryable: the platform limits the rate (the message may go out
	// later); every other refusal is final.
	Retryable bool
}

func (e *PlatformError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s refused the message: %s", e.Format, e.Message)
	}
	return fmt.Sprintf("%s refused the message: error %s: %s", e.Format, e.Code, e.Message)
}

// rateLimited are the error codes the platforms document for sending too
// often: the message is retried later, as a 429 would be.
var rateLimited = map[Format]map[int64]bool{
	WeCom:    {45009: true},  // api freq out of limit
	DingTalk: {130101: true}, // send too fast
	Feishu:   {11232: true},  // frequency limited
}

// CheckAnswer reads a 2xx answer of format f's receiver: nil when the
// platform took the message, a *PlatformError when it says it did not.
// Formats whose receivers answer with the status alone always return nil.
func CheckAnswer(f Format, body []byte) error {
	switch f {
	case Slack:
		if t := strings.TrimSpace(string(body)); t != "ok" && t != "" {
			return &PlatformError{Format: f, Message: oneLine(t)}
		}
	case WeCom, DingTalk:
		var a struct {
			Code *int64 `json:"errcode"`
			Msg  string `json:"errmsg"`
		}
		if err := json.Unmarshal(body, &a); err != nil || a.Code == nil {
			return &PlatformError{Format: f, Message: "the answer is not the platform's {\"errcode\":0} JSON: " + oneLine(string(body))}
		}
		if *a.Code != 0 {
			return &PlatformError{Format: f, Code: fmt.Sprint(*a.Code), Message: oneLine(a.Msg), Retryable: rateLimited[f][*a.Code]}
		}
	case Feishu:
		var a struct {
			Code       *int64 `json:"code"`
			Msg        string `json:"msg"`
			StatusCode *int64 `json:"StatusCode"` // the older answer
			StatusMsg  string `json:"StatusMessage"`
		}
		if err := json.Unmarshal(body, &a); err != nil || (a.Code == nil && a.StatusCode == nil) {
			return &PlatformError{Format: f, Message: "the answer is not the platform's {\"code\":0} JSON: " + oneLine(string(body))}
		}
		code, msg := a.Code, a.Msg
		if code == nil {
			code, msg = a.StatusCode, a.StatusMsg
		}
		if *code != 0 {
			return &PlatformError{Format: f, Code: fmt.Sprint(*code), Message: oneLine(msg), Retryable: rateLimited[f][*code]}
		}
	}
	return nil
}

// RefusalText is the platform's reason in an error answer (a 4xx or 5xx)
// of a chat format, for the record: Slack's text, Teams' error message,
// the Chinese platforms' errmsg. "" for other formats, whose receivers'
// bodies regtrigger does not record.
func RefusalText(f Format, body []byte) string {
	switch f {
	case Slack:
		return oneLine(string(body))
	case Teams:
		var a struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &a) == nil && (a.Error.Code != "" || a.Error.Message != "") {
			return oneLine(strings.TrimSpace(a.Error.Code + " " + a.Error.Message))
		}
		return oneLine(string(body))
	case WeCom, DingTalk, Feishu:
		if err, ok := CheckAnswer(f, body).(*PlatformError); ok && err.Code != "" {
			return "error " + err.Code + ": " + err.Message
		}
		return oneLine(string(body))
	}
	return ""
}

// maxMessage bounds a platform message kept in a record.
const maxMessage = 200

// oneLine is s with control characters as spaces, at most maxMessage
// bytes.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > maxMessage {
		s = truncateUTF8(s, maxMessage) + "…"
	}
	return string(bytes.TrimSpace([]byte(s)))
}
