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
// (Distribution) are split at the first "/": the first segment is the
// namespace, the rest the repository ("team/sub/app" is namespace "team",
// repository "sub/app"); a one-segment name goes to namespace "library",
// Docker's convention ("app" is "library"/"app"). Registries that send the
// namespace themselves (TCR, Harbor, Aliyun, Docker Hub) are taken as sent.
//
// Times: Aliyun ACR sends "YYYY-MM-DD HH:MM:SS" without a zone; regtrigger
// reads it as China Standard Time (UTC+8), the zone of Aliyun's console.
// Every OccurredAt is in UTC; a body without a time gets the time it was
// received. See docs/registries.md.
package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
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
	// ErrNotJSON: the body is empty or not a JSON object.
	ErrNotJSON = errors.New("body is not a JSON object")
	// ErrMalformed: the format is known (detected or forced) but the body
	// lacks what an event needs, or has a field of the wrong type.
	ErrMalformed = errors.New("malformed notification")
	// ErrUnsupportedEvent: the body is well formed but names an event type
	// regtrigger does not know (a newer registry version, say).
	ErrUnsupportedEvent = errors.New("unsupported event type")
)

// ParseError says what is wrong with a body of a known format.
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

// object is a body decoded one level deep.
type object map[string]json.RawMessage

func (o object) has(keys ...string) bool {
	for _, k := range keys {
		if _, ok := o[k]; !ok {
			return false
		}
	}
	return true
}

// str returns a top-level string field ("" when absent or not a string).
func (o object) str(key string) string {
	var s string
	if raw, ok := o[key]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

// sub decodes a nested object ("" when absent or not an object).
func (o object) sub(key string) object {
	var s object
	if raw, ok := o[key]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

// parser is one registry format.
type parser struct {
	name string
	// detect reports whether a body looks like this format.
	detect func(o object, h http.Header) bool
	// parse turns the body into events.
	parse func(n Notification) ([]event.Event, error)
}

// parsers in detection order: the most specific shapes first.
var parsers = []parser{
	{"distribution", detectDistribution, parseDistribution},
	{"tcr", detectTCR, parseTCR},
	{"harbor", detectHarbor, parseHarbor},
	{"harbor", detectHarborCloudEvents, parseHarborCloudEvents},
	{"acr", detectACR, parseACR},
	{"dockerhub", detectDockerHub, parseDockerHub},
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

// decode reads the top level of a body.
func decode(body []byte) (object, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: the body is empty", ErrNotJSON)
	}
	if trimmed[0] != '{' {
		if json.Valid(trimmed) {
			return nil, fmt.Errorf("%w: found a JSON %s at the top level", ErrNotJSON, jsonKind(trimmed[0]))
		}
		return nil, fmt.Errorf("%w: it does not start with '{'", ErrNotJSON)
	}
	var o object
	if err := json.Unmarshal(trimmed, &o); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	return o, nil
}

func jsonKind(c byte) string {
	switch c {
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

// Detect returns the source name of a body.
func Detect(n Notification) (string, error) {
	o, err := decode(n.Body)
	if err != nil {
		return "", err
	}
	for _, p := range parsers {
		if p.detect(o, n.Header) {
			return p.name, nil
		}
	}
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 12 {
		keys = append(keys[:12], "...")
	}
	return "", fmt.Errorf("%w: a JSON object with keys %v matches no registry regtrigger knows (%s); force one with /v1/notify/{source} or --source", ErrUnknownFormat, keys, strings.Join(Sources(), ", "))
}

// Parse returns the events of a notification. source "" detects the format;
// otherwise it names the format to use.
func Parse(n Notification, source string) ([]event.Event, error) {
	if n.ReceivedAt.IsZero() {
		n.ReceivedAt = time.Now()
	}
	if source == "" {
		o, err := decode(n.Body)
		if err != nil {
			return nil, err
		}
		for _, p := range parsers {
			if p.detect(o, n.Header) {
				return finish(p.parse(n))
			}
		}
		_, err = Detect(n)
		return nil, err
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
	o, err := decode(n.Body)
	if err != nil {
		return nil, err
	}
	// A forced source with several shapes (harbor: default or CloudEvents)
	// still picks the shape that fits; the first is the fallback, so its
	// parser explains what is missing.
	p := candidates[0]
	for _, c := range candidates {
		if c.detect(o, n.Header) {
			p = c
			break
		}
	}
	return finish(p.parse(n))
}

// finish drops events on error, so callers never see half a result.
func finish(evs []event.Event, err error) ([]event.Event, error) {
	if err != nil {
		return nil, err
	}
	return evs, nil
}

// unmarshal decodes a body into v, turning type errors into a ParseError
// naming the field.
func unmarshal(source string, body []byte, v any) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "the body"
		}
		return malformed(source, "%s: want %s, found a JSON %s", field, te.Type, te.Value)
	}
	return malformed(source, "%v", err)
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

// unixTime reads a JSON number of Unix seconds, possibly fractional
// ("1.417566161e+09"). Absent or null gives the zero time.
func unixTime(raw json.RawMessage) (time.Time, error) {
	s := string(bytes.TrimSpace(raw))
	if s == "" || s == "null" {
		return time.Time{}, nil
	}
	if s[0] == '"' {
		return time.Time{}, errors.New("want Unix seconds (a number), found a string")
	}
	n := json.Number(s)
	if i, err := n.Int64(); err == nil {
		if i < 0 {
			return time.Time{}, fmt.Errorf("%d is before 1970", i)
		}
		return time.Unix(i, 0).UTC(), nil
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, fmt.Errorf("%q is not Unix seconds", n)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC().Round(time.Millisecond), nil
}
