package taskmsg

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
)

func sampleTask() delivery.Task {
	return delivery.Task{
		ID:      "tsk_0123456789abcdef0123456789abcdef",
		Trigger: delivery.TriggerRef{Namespace: "public", Name: "deploy-nginx", Version: 3},
		Event:   event.Event{Source: "tcr", Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v1"},
		Attempt: 2, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr bool
	}{
		{"v2", `{"v":2,"task":{"id":"tsk_1","trigger":{"namespace":"p","name":"a","version":1}}}`, false},
		{"v1 with an embedded trigger keeps the reference", `{"v":1,"task":{"id":"tsk_1","trigger":{"namespace":"p","name":"a","url":"https://x/?secret=1","secrets":["whsec_x"]}}}`, false},
		{"not json", `hello`, true},
		{"unknown version", `{"v":3,"task":{"id":"tsk_1","trigger":{"name":"a"}}}`, true},
		{"no id", `{"v":2,"task":{"trigger":{"name":"a"}}}`, true},
		{"no trigger", `{"v":2,"task":{"id":"tsk_1"}}`, true},
		{"empty", ``, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrUndecodable) {
				t.Errorf("err %v does not match ErrUndecodable", err)
			}
		})
	}
}

func TestEncodeTooLarge(t *testing.T) {
	task := sampleTask()
	task.Raw = bytes.Repeat([]byte("x"), 4096)
	if _, err := Encode(task, 1024); !errors.Is(err, ErrTooLarge) || strings.Contains(err.Error(), "xxxx") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Encode(task, 1<<20); err != nil {
		t.Fatal(err)
	}
}

// FuzzDecode: no body panics, and a body that decodes re-encodes into one
// that decodes to the same task.
func FuzzDecode(f *testing.F) {
	b, _ := Encode(sampleTask(), 0)
	f.Add(b)
	f.Add([]byte(`{"v":1,"task":{"id":"x","trigger":{"name":"y"}}}`))
	f.Add([]byte(`{"v":2}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		task, err := Decode(body)
		if err != nil {
			if !errors.Is(err, ErrUndecodable) {
				t.Fatalf("error without ErrUndecodable: %v", err)
			}
			return
		}
		again, err := Encode(task, 0)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(again)
		if err != nil || back.ID != task.ID || back.Trigger != task.Trigger || back.Attempt != task.Attempt {
			t.Fatalf("round trip: %+v, %v", back, err)
		}
	})
}
