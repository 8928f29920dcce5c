package registry

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Azure Event Grid proves that an endpoint wants its events before it sends
// any: the first delivery to a new subscription (Event Grid schema) is an
// array holding one Microsoft.EventGrid.SubscriptionValidationEvent whose
// data.validationCode must be echoed back as {"validationResponse": code}
// with a 200. (Its CloudEvents schema uses an HTTP OPTIONS request instead,
// which the receiver's HTTP endpoint answers.)
//
// https://learn.microsoft.com/azure/event-grid/webhook-event-delivery

// EventGridValidationType is the eventType of Event Grid's validation event.
const EventGridValidationType = "Microsoft.EventGrid.SubscriptionValidationEvent"

// maxValidationCode bounds the code echoed back; Event Grid's are GUIDs.
const maxValidationCode = 128

// Handshake recognises a subscription-validation request that must be
// answered instead of parsed into events, and returns the JSON answer to send
// with 200 OK. ok is false for every other body.
func Handshake(n Notification) (answer []byte, ok bool) {
	body := bytes.TrimSpace(n.Body)
	// Every notification passes here: decode only a body that can be one.
	if len(body) == 0 || (body[0] != '[' && body[0] != '{') || !bytes.Contains(body, []byte(EventGridValidationType)) {
		return nil, false
	}
	type validation struct {
		EventType string `json:"eventType"`
		Data      struct {
			ValidationCode string `json:"validationCode"`
		} `json:"data"`
	}
	var evs []validation
	if body[0] == '[' {
		if json.Unmarshal(body, &evs) != nil {
			return nil, false
		}
	} else {
		var one validation
		if json.Unmarshal(body, &one) != nil {
			return nil, false
		}
		evs = []validation{one}
	}
	if len(evs) != 1 || evs[0].EventType != EventGridValidationType {
		return nil, false
	}
	code := evs[0].Data.ValidationCode
	if code == "" || len(code) > maxValidationCode || strings.ContainsFunc(code, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, false
	}
	answer, err := json.Marshal(struct {
		ValidationResponse string `json:"validationResponse"`
	}{code})
	if err != nil {
		return nil, false
	}
	return answer, true
}
