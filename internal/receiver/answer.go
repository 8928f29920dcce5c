package receiver

import (
	"encoding/json"
	"strconv"
)

// appendJSON appends the answer as json.Marshal encodes it, byte for byte
// (TestAnswerJSON holds it to that), without reflection: every accepted
// notification is answered with one, about 1 KiB for ten triggers. A change
// to the fields or tags of Accepted, AcceptedEvent, TaskRef or SkipRef must
// be made here too; the test fails until it is.
func (a *Accepted) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if a.RequestID != "" {
		b = append(b, `"request_id":`...)
		b = appendJSONString(b, a.RequestID)
		b = append(b, ',')
	}
	b = append(b, `"source":`...)
	b = appendJSONString(b, a.Source)
	b = append(b, `,"events":`...)
	if a.Events == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range a.Events {
			if i > 0 {
				b = append(b, ',')
			}
			b = a.Events[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	b = append(b, `,"tasks":`...)
	b = strconv.AppendInt(b, int64(a.Tasks), 10)
	return append(b, '}')
}

func (e *AcceptedEvent) appendJSON(b []byte) []byte {
	b = append(b, `{"action":`...)
	b = appendJSONString(b, string(e.Action))
	b = append(b, `,"namespace":`...)
	b = appendJSONString(b, e.Namespace)
	b = append(b, `,"repository":`...)
	b = appendJSONString(b, e.Repository)
	if e.Tag != "" {
		b = append(b, `,"tag":`...)
		b = appendJSONString(b, e.Tag)
	}
	if e.Digest != "" {
		b = append(b, `,"digest":`...)
		b = appendJSONString(b, e.Digest)
	}
	if e.Duplicate {
		b = append(b, `,"duplicate":true`...)
	}
	b = append(b, `,"tasks":`...)
	if e.Tasks == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, t := range e.Tasks {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONPair(b, "id", t.ID, "trigger", t.Trigger)
		}
		b = append(b, ']')
	}
	if len(e.Skipped) > 0 {
		b = append(b, `,"untriggered":[`...)
		for i, s := range e.Skipped {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONPair(b, "trigger", s.Trigger, "reason", s.Reason)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendJSONPair appends an object of two string fields; the keys are
// plain ASCII.
func appendJSONPair(b []byte, k1, v1, k2, v2 string) []byte {
	b = append(b, `{"`...)
	b = append(b, k1...)
	b = append(b, `":`...)
	b = appendJSONString(b, v1)
	b = append(b, `,"`...)
	b = append(b, k2...)
	b = append(b, `":`...)
	b = appendJSONString(b, v2)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Printable ASCII other than
// the characters json.Marshal escapes ('"', '\\', and '<', '>', '&' for
// HTML) is copied as is: ids, names and reasons always are. Anything else
// is left to json.Marshal, so the escaping is exactly its own.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
