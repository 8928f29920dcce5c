package registry

import (
	"strings"
	"testing"
)

func TestHandshake(t *testing.T) {
	const code = "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
	valid := `[{"id":"2d1781af-3a4c-4d7c-bd0c-e34b19da4e66","topic":"/subscriptions/x","subject":"","data":{"validationCode":"` + code + `","validationUrl":"https://rp-eastus2.eventgrid.azure.net/x"},"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","eventTime":"2018-01-25T22:12:19.4556811Z","metadataVersion":"1","dataVersion":"1"}]`
	tests := []struct {
		name   string
		body   string
		answer string
	}{
		{"event grid array", valid, `{"validationResponse":"` + code + `"}`},
		{"single object", strings.Trim(valid, "[]"), `{"validationResponse":"` + code + `"}`},
		{"code is escaped", `[{"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{"validationCode":"a\"b<"}}]`, `{"validationResponse":"a\"b\u003c"}`},
		{"no code", `[{"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{}}]`, ""},
		{"control character in code", `[{"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{"validationCode":"a\nb"}}]`, ""},
		{"code too long", `[{"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{"validationCode":"` + strings.Repeat("x", 129) + `"}}]`, ""},
		{"two events", "[" + strings.Trim(valid, "[]") + "," + strings.Trim(valid, "[]") + "]", ""},
		{"other event type", `[{"eventType":"Microsoft.ContainerRegistry.ImagePushed","data":{"validationCode":"x"}}]`, ""},
		{"tcr body", `{"type":"pushImage","occur_at":1,"event_data":{}}`, ""},
		{"not json", `[{`, ""},
		{"empty", ``, ""},
		{"string", `"x"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Handshake(Notification{Body: []byte(tt.body)})
			if ok != (tt.answer != "") || string(got) != tt.answer {
				t.Errorf("Handshake = %s, %v; want %s", got, ok, tt.answer)
			}
		})
	}
}

func FuzzHandshake(f *testing.F) {
	f.Add([]byte(`[{"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{"validationCode":"abc"}}]`))
	f.Add([]byte(`{"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{"validationCode":"abc"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		answer, ok := Handshake(Notification{Body: body})
		if ok && !strings.HasPrefix(string(answer), `{"validationResponse":"`) {
			t.Fatalf("answer %s", answer)
		}
	})
}
