package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Every notification is read here, with jsontext, the syntactic layer of
// the Go team's JSON v2 (github.com/go-json-experiment/json, which mirrors
// encoding/json/jsontext; Go 1.26 ships the standard library package only
// behind GOEXPERIMENT=jsonv2). decode reads the body once, token by token,
// which checks its syntax and indexes its top level (object), for
// detection and for the parsers; the parsers decode their structs through
// small hand-written decodeField methods (structDecoder, decodeBody)
// instead of encoding/json's reflection. A new format does not need them:
// unmarshal does the same, only slower.
//
// Everything here agrees with encoding/json, and the struct decoders never
// decide anything encoding/json might decide otherwise. Wherever that is
// not obvious (a key that names a field only in another case, or in a
// non-ASCII spelling encoding/json folds onto it; a field given twice, which
// encoding/json merges; a value of a kind the field does not take, which is
// an error to word), they give up, and the struct is decoded with
// encoding/json from scratch, which also words every error. The fuzz tests
// check both agree.

// readOptions make jsontext read what encoding/json reads: an object may
// give a name twice (RFC 7493 forbids it; encoding/json takes the last for
// a map, merges for a struct), and a string may hold invalid UTF-8 (read as
// U+FFFD).
var readOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// valid reports whether b is one JSON value with only JSON whitespace
// around it, as json.Valid does. (TestValid and FuzzRead check they agree.)
func valid(b []byte) bool { return jsontext.Value(b).IsValid(readOptions...) }

// trimSpace trims JSON whitespace (only), which is what encoding/json
// accepts around a value.
func trimSpace(b []byte) []byte { return bytes.Trim(b, " \t\r\n") }

// reader is a jsontext.Decoder over one value in memory. Reading from a
// bytes.Buffer, the decoder parses the buffer's own bytes, so every value it
// returns is a slice of the body, not a copy, and stays valid as long as
// the body: nothing writes to the buffer.
type reader struct {
	buf bytes.Buffer
	dec jsontext.Decoder
}

var readers = sync.Pool{New: func() any { return new(reader) }}

// read returns a reader of raw; put it back with done.
func read(raw []byte) *reader {
	r := readers.Get().(*reader)
	r.buf = *bytes.NewBuffer(raw)
	r.dec.Reset(&r.buf, readOptions...)
	return r
}

func (r *reader) done() {
	r.buf = bytes.Buffer{}
	readers.Put(r)
}

// members iterates over the members of the JSON object raw (valid JSON):
// each key, unescaped, and its value, without whitespace around it. It
// yields nothing for a value of another kind.
//
//	for key, val := range members(raw) { ... }
func members(raw json.RawMessage) iter.Seq2[[]byte, json.RawMessage] {
	return func(yield func([]byte, json.RawMessage) bool) {
		r := read(raw)
		defer r.done()
		if tok, err := r.dec.ReadToken(); err != nil || tok.Kind() != '{' {
			return
		}
		for r.dec.PeekKind() == '"' {
			name, err := r.dec.ReadValue()
			if err != nil {
				return
			}
			val, err := r.dec.ReadValue()
			if err != nil || !yield(unquoteKey(name), json.RawMessage(val)) {
				return
			}
		}
	}
}

// elements iterates over the elements of the JSON array raw (valid JSON),
// as members does over an object's members.
func elements(raw json.RawMessage) iter.Seq[json.RawMessage] {
	return func(yield func(json.RawMessage) bool) {
		r := read(raw)
		defer r.done()
		if tok, err := r.dec.ReadToken(); err != nil || tok.Kind() != '[' {
			return
		}
		for r.dec.PeekKind() != ']' {
			val, err := r.dec.ReadValue()
			if err != nil || !yield(json.RawMessage(val)) {
				return
			}
		}
	}
}

// verbatim reports whether the JSON string literal lit holds its own text:
// no escapes, valid UTF-8.
func verbatim(lit []byte) bool {
	s := lit[1 : len(lit)-1]
	return bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s)
}

// unquote returns the string a JSON string literal (quotes included, valid
// JSON) holds, as encoding/json decodes it: escapes resolved, and invalid
// UTF-8 and lone surrogates each made U+FFFD.
func unquote(lit []byte) string {
	if verbatim(lit) {
		return string(lit[1 : len(lit)-1])
	}
	// The error reports what was replaced by U+FFFD.
	b, _ := jsontext.AppendUnquote(nil, lit)
	return string(b)
}

// unquoteKey is unquote for an object key: without a copy when the key is
// its own text, which it almost always is.
func unquoteKey(lit []byte) []byte {
	if verbatim(lit) {
		return lit[1 : len(lit)-1]
	}
	b, _ := jsontext.AppendUnquote(nil, lit)
	return b
}

// isASCII reports whether s is ASCII only.
func isASCII(s []byte) bool {
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// member is one member of a JSON object.
type member struct {
	key []byte          // unescaped
	val json.RawMessage // without whitespace around it
}

// object is a JSON object decoded one level deep: its members in body
// order, keys unescaped, values as text (slices of the body, not copies).
// A key may appear twice; as in a map decoded by encoding/json, the last
// one counts.
type object []member

// objectOf indexes the JSON object raw (which starts with '{'). It never
// returns nil, so that an empty object is told from no object.
func objectOf(raw json.RawMessage) object { return appendMembers(make(object, 0, 16), raw) }

// readObject appends the members of raw to o, if raw is one JSON object
// (valid JSON, whitespace around it allowed): ok is valid(raw) for a raw
// that starts with '{', from the one read that also indexes it.
func readObject(o object, raw []byte) (_ object, ok bool) {
	r := read(raw)
	defer r.done()
	if tok, err := r.dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return o, false
	}
	for r.dec.PeekKind() == '"' {
		name, err := r.dec.ReadValue()
		if err != nil {
			return o, false
		}
		val, err := r.dec.ReadValue()
		if err != nil {
			return o, false
		}
		o = append(o, member{unquoteKey(name), json.RawMessage(val)})
	}
	if tok, err := r.dec.ReadToken(); err != nil || tok.Kind() != '}' {
		return o, false
	}
	_, err := r.dec.ReadToken()
	return o, err == io.EOF
}

// appendMembers appends the members of the JSON object raw to o.
func appendMembers(o object, raw json.RawMessage) object {
	for key, val := range members(raw) {
		o = append(o, member{key, val})
	}
	return o
}

// get returns the value of a key (the last one given), nil when absent.
func (o object) get(key string) json.RawMessage {
	for i := len(o) - 1; i >= 0; i-- {
		if string(o[i].key) == key {
			return o[i].val
		}
	}
	return nil
}

func (o object) has(keys ...string) bool {
	for _, k := range keys {
		if o.get(k) == nil {
			return false
		}
	}
	return true
}

// keysWithin reports whether o has no key other than the given ones.
func keysWithin(o object, keys ...string) bool {
	for _, m := range o {
		found := false
		for _, want := range keys {
			if string(m.key) == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// str returns a top-level string field ("" when absent or not a string).
func (o object) str(key string) string {
	if raw := o.get(key); raw != nil && raw[0] == '"' {
		return unquote(raw)
	}
	return ""
}

// objectHas reports whether raw is a JSON object with every one of keys
// (false for nil, or a value of another kind).
func objectHas(raw json.RawMessage, keys ...string) bool {
	if len(raw) == 0 || raw[0] != '{' {
		return false
	}
	var found uint64 // bit i: keys[i] was found
	for key := range members(raw) {
		for i, k := range keys {
			if string(key) == k {
				found |= 1 << i
			}
		}
	}
	return found == 1<<len(keys)-1
}

// structDecoder is a struct the fast path decodes without reflection. Its
// fields all have json tags naming them, and nothing else (no options).
type structDecoder interface {
	// fields returns the JSON names of the struct's fields (jsonNames).
	fields() []string
	// decodeField decodes the value of the field called name into the
	// struct, which has not seen that field yet. It reports false when
	// encoding/json might decode the value differently, or refuse it. A
	// json.RawMessage field takes val as it is (a slice of the body, where
	// encoding/json would copy it).
	decodeField(name string, val json.RawMessage) bool
}

// decoderPtr is *T, for a struct T with a fast decoder.
type decoderPtr[T any] interface {
	*T
	structDecoder
}

// jsonNames returns the JSON names of the fields of struct type T, as
// their tags give them; structDecoder.fields returns them.
func jsonNames[T any]() []string {
	t := reflect.TypeFor[T]()
	names := make([]string, t.NumField())
	for i := range names {
		f := t.Field(i)
		name := f.Tag.Get("json")
		if !f.IsExported() || f.Anonymous || name == "" || strings.ContainsAny(name, ",") || name == "-" {
			panic(fmt.Sprintf("registry: %s.%s needs a plain json tag to be decoded by the fast path", t, f.Name))
		}
		names[i] = name
	}
	if len(names) > 64 {
		panic(fmt.Sprintf("registry: %s has more than 64 fields", t))
	}
	return names
}

// fieldSet matches the keys of one JSON object to a struct's fields.
type fieldSet struct {
	names []string
	seen  uint64 // bit i: names[i] was given
}

// decode decodes one member into d. It reports false when encoding/json
// might do otherwise: the key names a field that was given already (which
// encoding/json merges into the first), or names one only case-insensitively
// (which encoding/json accepts: "Tag" for "tag"), or is not ASCII (which
// encoding/json may fold onto a field: "ſ" is an "s" to it).
func (f *fieldSet) decode(d structDecoder, key []byte, val json.RawMessage) bool {
	for i, name := range f.names {
		if string(key) == name {
			if f.seen&(1<<i) != 0 {
				return false
			}
			f.seen |= 1 << i
			return d.decodeField(name, val)
		}
	}
	if !isASCII(key) {
		return false
	}
	for _, name := range f.names {
		if bytes.EqualFold(key, []byte(name)) {
			return false
		}
	}
	return true // a key of no field: skipped, as encoding/json does
}

// decodeMembers decodes an object's members, as decode indexed them, into
// the struct d. False when the fast path gives up.
func decodeMembers(o object, d structDecoder) bool {
	f := fieldSet{names: d.fields()}
	for _, m := range o {
		if !f.decode(d, m.key, m.val) {
			return false
		}
	}
	return true
}

// decodeStruct decodes a JSON value into the struct d, as encoding/json
// does: null leaves it as it is. False when the fast path gives up.
func decodeStruct(raw json.RawMessage, d structDecoder) bool {
	switch raw[0] {
	case 'n':
		return true
	case '{':
		f := fieldSet{names: d.fields()}
		for key, val := range members(raw) {
			if !f.decode(d, key, val) {
				return false
			}
		}
		return true
	}
	return false
}

// decodePtr decodes a JSON value into a pointer to a struct, as
// encoding/json does: null makes it nil, an object a new struct.
func decodePtr[T any, P decoderPtr[T]](raw json.RawMessage, p **T) bool {
	if raw[0] == 'n' {
		*p = nil
		return true
	}
	v := P(new(T))
	*p = v
	return raw[0] == '{' && decodeStruct(raw, v)
}

// decodeSlice decodes a JSON value into a slice of structs, as
// encoding/json does: null makes it nil, an array (even an empty one) a
// new slice, and a null element a zero struct.
func decodeSlice[T any, P decoderPtr[T]](raw json.RawMessage, s *[]T) bool {
	switch raw[0] {
	case 'n':
		*s = nil
		return true
	case '[':
	default:
		return false
	}
	out := []T{}
	for val := range elements(raw) {
		out = append(out, *new(T))
		if !decodeStruct(val, P(&out[len(out)-1])) {
			return false
		}
	}
	*s = out
	return true
}

// decodeString decodes a JSON value into a string, as encoding/json does:
// null leaves it as it is.
func decodeString(raw json.RawMessage, s *string) bool {
	switch raw[0] {
	case '"':
		*s = unquote(raw)
		return true
	case 'n':
		return true
	}
	return false
}

// decodeAt decodes JSON known to be valid (a body decode read, or a value
// in one) into v, as unmarshalAt does, with the fast path when it can.
func decodeAt[T any, P decoderPtr[T]](source, where string, raw json.RawMessage, v P) error {
	if decodeStruct(raw, v) {
		return nil
	}
	var zero T
	*v = zero
	return unmarshalAt(source, where, raw, v)
}

// decodeBody decodes a notification's body into v, as unmarshal does,
// with the fast path when the body is an object encoding/json would read.
func decodeBody[T any, P decoderPtr[T]](source string, n Notification, t *top, v P) error {
	if t.body == nil {
		return unmarshal(source, n.Body, v) // which refuses it, and says why
	}
	// The top level as decode read it, not read again.
	if decodeMembers(t.obj, v) {
		return nil
	}
	var zero T
	*v = zero
	return unmarshalAt(source, "", t.body, v)
}
