package payload

import (
	"github.com/regtrigger/regtrigger/internal/event"
)

// A coalesced delivery carries the events of one burst (Meta.Events):
// the platform manifests and the index of a multi-arch push, or the tags a
// pipeline gave one digest. The formats list them where their shape has a
// list: tcr, harbor and flux one resource per distinct digest and tag;
// cloudevents every event under data.events; the chat formats the tags and
// digests as lines of the message; a template .Tags, .Digests and .Count.
// acr and dockerhub have one tag and one digest: they carry the event
// rendered, the last to arrive.

// MaxListed bounds the tags or digests a chat message names; the rest are
// counted ("and 12 more").
const MaxListed = 10

// carried is the events a delivery carries: m.Events, or ev alone.
func carried(ev event.Event, m Meta) []event.Event {
	if len(m.Events) > 1 {
		return m.Events
	}
	return []event.Event{ev}
}

// coalesced is m.Events when the delivery carries more than one event.
func coalesced(m Meta) []event.Event {
	if len(m.Events) > 1 {
		return m.Events
	}
	return nil
}

// resources are the tcr and harbor resources: one per distinct digest and
// tag, in arrival order.
func resources(ev event.Event, m Meta) []harborResource {
	evs := carried(ev, m)
	out := make([]harborResource, 0, len(evs))
	type key struct{ digest, tag string }
	var seen map[key]bool
	for _, e := range evs {
		if len(evs) > 1 {
			k := key{e.Digest, e.Tag}
			if seen[k] {
				continue
			}
			if seen == nil {
				seen = make(map[key]bool, len(evs))
			}
			seen[k] = true
		}
		out = append(out, harborResource{Digest: e.Digest, Tag: e.Tag, ResourceURL: e.ResourceURL})
	}
	return out
}

// distinct returns the distinct non-empty values of field over the
// delivery's events, in arrival order.
func distinct(ev event.Event, m Meta, field func(event.Event) string) []string {
	evs := carried(ev, m)
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		v := field(e)
		if v == "" || contains(out, v) {
			continue
		}
		out = append(out, v)
	}
	return out
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func tagOf(e event.Event) string    { return e.Tag }
func digestOf(e event.Event) string { return e.Digest }
