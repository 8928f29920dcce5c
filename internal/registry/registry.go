// Package registry turns the notification bodies registries send into
// normalised events (package event).
//
// Each supported registry format has one parser in its own file; Parse
// detects the format from the body (and the Content-Type header where it
// helps) or takes the one the caller forces. Bodies that are not JSON, that
// match no format, or that match one but lack what an event needs give a
// specific error — never a panic and never a silent success. A recognised
// body that describes something regtrigger does not trigger on (a scan
// result, a layer upload, the per-platform manifests of a multi-arch push)
// gives zero events and no error.
//
// Names: registries that send the repository as one full path
// (Distribution, Azure, ECR, JFrog, Nexus) are split at the first "/": the
// first segment is the namespace, the rest the repository ("team/sub/app" is
// namespace "team", repository "sub/app"); a one-segment name goes to
// namespace "library", Docker's convention ("app" is "library"/"app").
// Google's fully qualified references drop the host first (the namespace is
// the project). Registries that send the namespace themselves (TCR, Harbor,
// Aliyun, Docker Hub, Quay, GHCR's owner) are taken as sent.
//
// Times: Aliyun ACR sends "YYYY-MM-DD HH:MM:SS" without a zone; regtrigger
// reads it as China Standard Time (UTC+8, a fixed zone, no tzdata needed),
// the zone of Aliyun's console. Every OccurredAt is in UTC; a body without a
// time (Quay, JFrog, a GHCR body with zero times) gets the time it was
// received. A time outside the years 1–9999 (which an Event could not carry
// as JSON) makes the body malformed.
//
// Event types: an event type a format defines but regtrigger does not
// trigger on (Distribution "mount", Harbor scans and quotas, ECR scans, Azure
// quarantine and ping, a GitHub ping) gives zero events. A type that is not
// known at all is refused with ErrUnsupportedEvent (which is also an
// ErrMalformed), so a new registry version shows up in the registry's own
// webhook log instead of being dropped in silence; a missing type is
// malformed.
//
// Bodies are JSON objects, except Azure Event Grid's, which deliver a JSON
// array of events: a top-level array is offered only to the formats that
// accept one.
//
// Adding a registry is one file: a detect and a parse function, and one line
// in the parsers table. See docs/registries.md.
package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

// Notification is one received request.
type Notification struct {
	Body       []byte
	Header     http.Header
	ReceivedAt time.Time
}

// Errors callers decide on with errors.Is.
var (
	// ErrUnknownSource: the forced source name is not a known format.
	ErrUnknownSource = errors.New("unknown registry source")
	// ErrUnknownFormat: the body is JSON but matches no known format.
	ErrUnknownFormat = errors.New("unknown registry format")
	// ErrNotJSON: the body is empty, not JSON, or neither a JSON object nor
	// an array of JSON objects.
	ErrNotJSON = errors.New("body is not a JSON object")
	// ErrMalformed: the format is known (detected or forced) but the body
	// lacks what an event needs, or has a field of the wrong type.
	ErrMalformed = errors.New("malformed notification")
	// ErrUnsupportedEvent: the body is well formed but names an event type
	// regtrigger does not know (a newer registry version, say). It wraps
	// ErrMalformed, so callers that only know ErrMalformed still refuse it.
	ErrUnsupportedEvent = fmt.Errorf("%w: unsupported event type", ErrMalformed)
)

// ParseError says what is wrong with a body of a known format. Its Error is
// "<source>: <reason>", e.g. "harbor: event_data.repository.namespace is
// missing"; errors.Is(err, ErrMalformed) holds for every ParseError.
type ParseError struct {
	Source string
	Reason string
	Err    error // ErrMalformed or ErrUnsupportedEvent
}

func (e *ParseError) Error() string { return e.Source + ": " + e.Reason }

// Unwrap lets errors.Is find the kind.
func (e *ParseError) Unwrap() error { return e.Err }

func malformed(source, format string, args ...any) error {
	return &ParseError{Source: source, Reason: fmt.Sprintf(format, args...), Err: ErrMalformed}
}

func unsupported(source, typ string) error {
	return &ParseError{Source: source, Reason: fmt.Sprintf("event type %q is not supported", typ), Err: ErrUnsupportedEvent}
}

// parser is one registry format. Adding a registry is one file with its
// detect and parse functions, and one line in parsers.
type parser struct {
	name string
	// detect reports whether a body that is a JSON object (t.obj) looks
	// like this format. It must be cheap and must not claim bodies of other
	// formats. It may keep what it decoded in t, for parse.
	detect func(t *top, h http.Header) bool
	// detectArray, for the formats that may send a JSON array of events at
	// the top level (Azure Event Grid), reports whether such a body is
	// theirs; nil for every other format.
	detectArray func(items []object, h http.Header) bool
	// parse turns the body into events; t is its top level, as detection
	// read it, which the parser may decode from (decodeBody).
	parse func(n Notification, t *top) ([]event.Event, error)
}

// parsers in detection order: the most specific shapes first. Formats found
// by a header (GHCR, Nexus) or a fixed field value (ECR's source, Pub/Sub's
// envelope) come before the shapes recognised by keys alone. When a source
// has several shapes, its first line is the one a forced source falls back
// to, so that parser explains what is missing (Azure: the webhook; Google:
// the Pub/Sub envelope); the shapes of one source never overlap.
var parsers = []parser{
	{name: "ghcr", detect: detectGHCR, parse: parseGHCR},
	{name: "nexus", detect: detectNexus, parse: parseNexus},
	{name: "ecr", detect: detectECR, parse: parseECR},
	{name: "gar", detect: detectPubSub, parse: parsePubSub},
	{name: "distribution", detect: detectDistribution, parse: parseDistribution},
	{name: "tcr", detect: detectTCR, parse: parseTCR},
	{name: "harbor", detect: detectHarbor, parse: parseHarbor},
	{name: "harbor", detect: detectHarborCloudEvents, parse: parseHarborCloudEvents},
	{name: "azure", detect: detectAzureWebhook, parse: parseAzureWebhook},
	{name: "azure", detect: detectEventGrid, detectArray: detectEventGridArray, parse: parseEventGrid},
	{name: "jfrog", detect: detectJFrog, parse: parseJFrog},
	{name: "acr", detect: detectACR, parse: parseACR},
	{name: "dockerhub", detect: detectDockerHub, parse: parseDockerHub},
	{name: "quay", detect: detectQuay, parse: parseQuay},
	{name: "gar", detect: detectGARMessage, parse: parseGARMessage},
}

// Sources returns the source names parsers exist for, sorted.
func Sources() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range parsers {
		if !seen[p.name] {
			seen[p.name] = true
			out = append(out, p.name)
		}
	}
	sort.Strings(out)
	return out
}

// top is a body decoded one level deep: a JSON object, or a JSON array
// whose elements are all objects.
type top struct {
	obj   object   // the body, when it is an object
	items []object // the body's elements, when it is an array (never empty)
	// body is an object body without the JSON whitespace around it, for
	// decodeBody; nil when other whitespace, which decode trims, surrounds
	// it (a form feed, say): encoding/json refuses such a body, and so must
	// the parsers.
	body json.RawMessage
	// harbor is the body decoded as a Harbor envelope, when detectTCR
	// decoded it with decodeBody's fast path: what parsing it as tcr or
	// harbor decodes.
	harbor *harborEnvelope
	// members holds obj's members, unless there are too many: one
	// allocation for both.
	members [16]member
}

// decode reads the top level of a body. An array is accepted only when it
// holds objects, and only formats with a detectArray see it; every other
// array is ErrNotJSON, as before arrays were accepted at all.
func decode(body []byte) (*top, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: the body is empty", ErrNotJSON)
	}
	// An object, nearly every body, is checked and indexed in one read.
	var (
		t  *top
		ok bool
	)
	if trimmed[0] == '{' {
		t = new(top)
		t.obj, ok = readObject(t.members[:0], trimmed)
	} else {
		ok = valid(trimmed)
	}
	switch {
	case !ok && (trimmed[0] == '{' || trimmed[0] == '['):
		// encoding/json says what is wrong, whatever it decodes into.
		return nil, fmt.Errorf("%w: %v", ErrNotJSON, json.Unmarshal(trimmed, new(json.RawMessage)))
	case trimmed[0] == '{':
		if len(trimSpace(body)) == len(trimmed) {
			t.body = trimmed
		}
		return t, nil
	case trimmed[0] == '[':
		var items []object
		for val := range elements(trimmed) {
			if val[0] != '{' {
				items = nil
				break
			}
			items = append(items, objectOf(val))
		}
		if len(items) == 0 {
			return nil, fmt.Errorf("%w: found a JSON array at the top level, and not one of JSON objects", ErrNotJSON)
		}
		return &top{items: items}, nil
	case ok:
		return nil, fmt.Errorf("%w: found a JSON %s at the top level", ErrNotJSON, jsonKind(trimmed[0]))
	}
	return nil, fmt.Errorf("%w: it does not start with '{'", ErrNotJSON)
}

// claims reports whether p claims a decoded body.
func (p parser) claims(t *top, h http.Header) bool {
	if t.items != nil {
		return p.detectArray != nil && p.detectArray(t.items, h)
	}
	return p.detect(t, h)
}

func jsonKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	}
	return "number"
}

// detect returns the first parser that claims the body, and the body's
// top level.
func detect(n Notification) (parser, *top, error) {
	t, err := decode(n.Body)
	if err != nil {
		return parser{}, nil, err
	}
	for _, p := range parsers {
		if p.claims(t, n.Header) {
			return p, t, nil
		}
	}
	seen := "a JSON object with keys " + keyList(t.obj)
	if t.items != nil {
		seen = fmt.Sprintf("a JSON array of %d objects (the first with keys %s)", len(t.items), keyList(t.items[0]))
	}
	if ct := n.Header.Get("Content-Type"); ct != "" {
		seen += fmt.Sprintf(" (Content-Type %q)", ct)
	}
	return parser{}, nil, fmt.Errorf("%w: %s matches no registry format regtrigger knows (%s); force one with /v1/notify/{source} or --source",
		ErrUnknownFormat, seen, strings.Join(Sources(), ", "))
}

// keyList names the keys of an object, sorted and each once, for error
// messages.
func keyList(o object) string {
	keys := make([]string, 0, len(o))
	for _, m := range o {
		keys = append(keys, string(m.key))
	}
	sort.Strings(keys)
	keys = slices.Compact(keys)
	if len(keys) > 12 {
		keys = append(keys[:12], "...")
	}
	return fmt.Sprint(keys)
}

// Detect returns the source name of a body. The error wraps ErrNotJSON when
// the body is not a JSON object (nor an array of them), ErrUnknownFormat
// when it matches no format.
func Detect(n Notification) (string, error) {
	p, _, err := detect(n)
	if err != nil {
		return "", err
	}
	return p.name, nil
}

// Parse returns the events of a notification. source "" detects the format;
// otherwise it names the format to use (ErrUnknownSource if there is none).
// Zero events and a nil error mean a recognised body that fires nothing.
func Parse(n Notification, source string) ([]event.Event, error) {
	if n.ReceivedAt.IsZero() {
		n.ReceivedAt = time.Now()
	}
	if source == "" {
		p, t, err := detect(n)
		if err != nil {
			return nil, err
		}
		return finish(p.parse(n, t))
	}
	var candidates []parser
	for _, p := range parsers {
		if p.name == source {
			candidates = append(candidates, p)
		}
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("%w %q: known sources are %s", ErrUnknownSource, source, strings.Join(Sources(), ", "))
	}
	t, err := decode(n.Body)
	if err != nil {
		return nil, err
	}
	// A forced source with several shapes (harbor: default or CloudEvents;
	// azure: webhook or Event Grid) still picks the shape that fits; the
	// first is the fallback, so its parser explains what is missing. An
	// array goes only to a shape that accepts arrays.
	var p *parser
	for i, c := range candidates {
		if t.items != nil && c.detectArray == nil {
			continue
		}
		if p == nil {
			p = &candidates[i]
		}
		if c.claims(t, n.Header) {
			p = &candidates[i]
			break
		}
	}
	if p == nil {
		return nil, fmt.Errorf("%w: found a JSON array at the top level; %s sends a JSON object", ErrNotJSON, source)
	}
	return finish(p.parse(n, t))
}

// finish drops events on error, so callers never see half a result.
func finish(evs []event.Event, err error) ([]event.Event, error) {
	if err != nil {
		return nil, err
	}
	return evs, nil
}

// unmarshal decodes a body into v, turning type errors into a ParseError
// naming the field and the JSON kinds involved.
func unmarshal(source string, body []byte, v any) error {
	return unmarshalAt(source, "", body, v)
}

// unmarshalAt is unmarshal for JSON found inside a body (an Event Grid
// event's data string, a Pub/Sub message's decoded data): where names it
// ("data", "message.data", "[2]"), and prefixes the fields errors name.
func unmarshalAt(source, where string, b []byte, v any) error {
	err := json.Unmarshal(b, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		switch {
		case field == "" && where == "":
			field = "the body"
		case field == "":
			field = where
		case where != "":
			field = where + "." + field
		}
		return malformed(source, "%s: want a JSON %s, found a JSON %s", field, kindOf(te.Type), te.Value)
	}
	if where != "" {
		return malformed(source, "%s: %v", where, err)
	}
	return malformed(source, "%v", err)
}

// kindOf names the JSON kind a Go type decodes from.
func kindOf(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t != reflect.TypeFor[json.RawMessage]() {
			return "string"
		}
		return "array"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	}
	return "value"
}

// splitPath splits a full repository path into namespace and repository.
func splitPath(path string) (namespace, repository string) {
	path = strings.Trim(path, "/")
	ns, repo, ok := strings.Cut(path, "/")
	if !ok {
		return "library", path
	}
	return ns, repo
}

// hostOf returns the registry host of a reference ("host/ns/repo:tag") or
// of a URL ("https://host/chartrepo/...").
func hostOf(ref string) string {
	if _, rest, ok := strings.Cut(ref, "://"); ok {
		ref = rest
	}
	host, _, ok := strings.Cut(ref, "/")
	if !ok {
		return ""
	}
	// A first segment without '.', ':' or "localhost" is a namespace, not a host.
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		return ""
	}
	return host
}

// reference builds a pullable reference.
func reference(host, namespace, repository, tag, digest string) string {
	var b strings.Builder
	if host != "" {
		b.WriteString(host + "/")
	}
	if namespace != "" {
		b.WriteString(namespace + "/")
	}
	b.WriteString(repository)
	switch {
	case tag != "":
		b.WriteString(":" + tag)
	case digest != "":
		b.WriteString("@" + digest)
	}
	return b.String()
}

// mediaType returns the media type of the Content-Type header, lowercased.
func mediaType(h http.Header) string {
	if h == nil {
		return ""
	}
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

// maxUnix is 9999-12-31T23:59:59Z: an Event's time must fit RFC 3339 (and
// so time.Time's JSON form), or the event could not be stored.
const maxUnix = 253402300799

// unixTime reads a JSON number of Unix seconds, possibly fractional
// ("1.417566161e+09"). Absent or null gives the zero time.
func unixTime(raw json.RawMessage) (time.Time, error) {
	s := string(bytes.TrimSpace(raw))
	if s == "" || s == "null" {
		return time.Time{}, nil
	}
	if s[0] == '"' {
		return time.Time{}, errors.New("want Unix seconds (a JSON number), found a JSON string")
	}
	n := json.Number(s)
	if i, err := n.Int64(); err == nil {
		if i < 0 || i > maxUnix {
			return time.Time{}, fmt.Errorf("%d is not Unix seconds between 1970 and 9999", i)
		}
		return time.Unix(i, 0).UTC(), nil
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > maxUnix {
		return time.Time{}, fmt.Errorf("%.20s is not Unix seconds between 1970 and 9999", s)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC().Round(time.Millisecond), nil
}

// rfc3339Time reads an RFC 3339 time ("" gives the zero time, and so does
// Go's zero time "0001-01-01T00:00:00Z", which some senders use for "none").
// The result is in UTC and within the years 1–9999.
func rfc3339Time(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s)
	}
	if t.IsZero() {
		return time.Time{}, nil
	}
	return inRange(s, t)
}

// inRange returns t in UTC, or an error naming s when t falls outside the
// years 1–9999 (which RFC 3339, and so an Event's JSON form, cannot carry).
func inRange(s string, t time.Time) (time.Time, error) {
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, fmt.Errorf("%q is outside the years 1-9999 in UTC", s)
	}
	return t, nil
}
