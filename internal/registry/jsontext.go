package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Every notification is read here, so the common path avoids what makes
// encoding/json slow on it: a syntax check of the whole body on every
// Unmarshal, a copy of every json.RawMessage, and reflection. decode checks
// the body once (valid) and indexes its top level once (object), for
// detection and for the parsers; the parsers decode their structs through
// small hand-written decodeField methods (structDecoder, decodeBody). A new
// format does not need them: unmarshal does the same, only slower.
//
// Everything here agrees with encoding/json, and the struct decoders never
// decide anything encoding/json might decide otherwise. Wherever that is
// not obvious (a key that names a field only in another case, or in a
// non-ASCII spelling encoding/json folds onto it; a field given twice, which
// encoding/json merges; a value of a kind the field does not take, which is
// an error to word), they give up, and the struct is decoded with
// encoding/json from scratch, which also words every error. The fuzz tests
// check both agree.

// isSpace reports whether c is JSON whitespace.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// trimSpace trims JSON whitespace (only), which is what encoding/json
// accepts around a value.
func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace(b[i]) {
		i++
	}
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

// maxDepth is how deeply encoding/json lets arrays and objects nest.
const maxDepth = 10000

// valid reports whether b is one JSON value with only JSON whitespace
// around it: json.Valid, without encoding/json's byte-at-a-time state
// machine. (FuzzValid checks they agree.)
func valid(b []byte) bool {
	open := make([]byte, 0, 32) // the arrays and objects open at i: '[' or '{'
	i := skipSpace(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return false
		}
		switch c := b[i]; c {
		case '{', '[':
			if len(open) == maxDepth {
				return false
			}
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' or ']': empty
				i++
				break
			}
			open = append(open, c)
			if c == '{' {
				if i = memberValue(b, i); i < 0 {
					return false
				}
			}
			continue
		case '"':
			if i = validStringEnd(b, i); i < 0 {
				return false
			}
		case 't':
			if i = literalEnd(b, i, "true"); i < 0 {
				return false
			}
		case 'f':
			if i = literalEnd(b, i, "false"); i < 0 {
				return false
			}
		case 'n':
			if i = literalEnd(b, i, "null"); i < 0 {
				return false
			}
		default:
			if i = numberEnd(b, i); i < 0 {
				return false
			}
		}
		// A value ends at i: then comes a ',' and the next value, or the
		// end of the array or object holding it, or the end of b.
		for {
			i = skipSpace(b, i)
			if len(open) == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			inner := open[len(open)-1]
			if b[i] == ',' {
				i = skipSpace(b, i+1)
				if inner == '{' {
					if i = memberValue(b, i); i < 0 {
						return false
					}
				}
				break
			}
			if b[i] != inner+2 {
				return false
			}
			open = open[:len(open)-1]
			i++
		}
	}
}

// memberValue reads a member's key and colon at i and returns where its
// value starts, or -1 when they are not there.
func memberValue(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = validStringEnd(b, i); i < 0 {
		return -1
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipSpace(b, i+1)
}

// stringStop marks the bytes validStringEnd looks at: the end of a string,
// an escape, and control characters, which JSON strings cannot hold.
var stringStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// validStringEnd returns the index just past the JSON string starting at
// b[i], or -1 when it is not one. Like encoding/json, it takes any byte
// but a control character, valid UTF-8 or not.
func validStringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		if !stringStop[b[i]] {
			continue
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for range 4 {
					if i++; i >= len(b) || !isHexDigit(b[i]) {
						return -1
					}
				}
			default:
				return -1
			}
		}
	}
	return -1
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// literalEnd returns the index just past the literal lit (true, false,
// null) at b[i], or -1 when it is not there.
func literalEnd(b []byte, i int, lit string) int {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return -1
	}
	return i + len(lit)
}

// numberEnd returns the index just past the JSON number starting at b[i],
// or -1 when there is none: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func numberEnd(b []byte, i int) int {
	digits := func(i int) int { // past a run of at least one digit, or -1
		j := i
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if i = digits(i + 1); i < 0 {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i = digits(i); i < 0 {
			return -1
		}
	}
	return i
}

// The readers below take text that is valid JSON (json.Valid holds for the
// whole body it comes from) and never check it again.

// stringEnd returns the index just past the JSON string starting at b[i].
func stringEnd(b []byte, i int) int {
	i++
	for {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return len(b)
		}
		i += q
		// The quote is escaped when an odd number of backslashes precede it.
		escaped := false
		for k := i - 1; b[k] == '\\'; k-- {
			escaped = !escaped
		}
		i++
		if !escaped {
			return i
		}
	}
}

// structural marks the bytes valueEnd stops at inside an array or object.
var structural = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

// valueEnd returns the index just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			if !structural[b[i]] {
				continue
			}
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			default:
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	// A number, true, false or null: it ends at a delimiter.
	for i < len(b) && !isSpace(b[i]) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
		i++
	}
	return i
}

// nextItem returns where the next member of an object, or element of an
// array, starts in rest (the text after the one before, or after the '{' or
// '['): past whitespace and the ',' between two. There is the closing '}'
// or ']' when there is no next one.
func nextItem(rest []byte) int {
	i := skipSpace(rest, 0)
	if i < len(rest) && rest[i] == ',' {
		i = skipSpace(rest, i+1)
	}
	return i
}

// members iterates over the members of a JSON object:
//
//	for m := membersOf(raw); m.next(); { use(m.key, m.val) }
type members struct {
	rest []byte          // the text after the member read last
	key  []byte          // the member's key, unescaped
	val  json.RawMessage // the member's value, without whitespace around it
}

// membersOf iterates over the JSON object raw (which starts with '{').
func membersOf(raw json.RawMessage) members { return members{rest: raw[1:]} }

func (m *members) next() bool {
	b := m.rest
	i := nextItem(b)
	if i >= len(b) || b[i] != '"' { // the closing '}'
		return false
	}
	end := stringEnd(b, i)
	m.key = unquoteKey(b[i:end])
	i = skipSpace(b, skipSpace(b, end)+1) // past the ':'
	end = valueEnd(b, i)
	m.val = b[i:end]
	m.rest = b[end:]
	return true
}

// elements iterates over the elements of a JSON array, as members does
// over an object's members.
type elements struct {
	rest []byte          // the text after the element read last
	val  json.RawMessage // the element, without whitespace around it
}

// elementsOf iterates over the JSON array raw (which starts with '[').
func elementsOf(raw json.RawMessage) elements { return elements{rest: raw[1:]} }

func (e *elements) next() bool {
	b := e.rest
	i := nextItem(b)
	if i >= len(b) || b[i] == ']' {
		return false
	}
	end := valueEnd(b, i)
	e.val = b[i:end]
	e.rest = b[end:]
	return true
}

// unquote returns the string a JSON string literal (quotes included, valid
// JSON) holds, as encoding/json decodes it: escapes resolved, and invalid
// UTF-8 and lone surrogates each made U+FFFD.
func unquote(lit []byte) string {
	s := lit[1 : len(lit)-1]
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return string(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && s[i+1] == 'u':
			r := hex4(s[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				// A pair makes one rune; a lone half, U+FFFD.
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if pair := utf16.DecodeRune(r, hex4(s[i+2:])); pair != utf8.RuneError {
						r = pair
						i += 6
					}
				}
				if utf16.IsSurrogate(r) {
					r = utf8.RuneError
				}
			}
			b.WriteRune(r)
		case c == '\\':
			b.WriteByte(unescape[s[i+1]])
			i += 2
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			b.WriteRune(r) // U+FFFD for a byte that is not UTF-8
			i += size
		}
	}
	return b.String()
}

// unescape maps the letter of a one-letter escape (the n of \n) to what
// it stands for.
var unescape = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// hex4 reads the four hex digits of a \u escape.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unquoteKey is unquote for an object key: without a copy when the key is
// its own text, which it almost always is.
func unquoteKey(lit []byte) []byte {
	s := lit[1 : len(lit)-1]
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return s
	}
	return []byte(unquote(lit))
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

// appendMembers appends the members of the JSON object raw to o.
func appendMembers(o object, raw json.RawMessage) object {
	for m := membersOf(raw); m.next(); {
		o = append(o, member{m.key, m.val})
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
	for m := membersOf(raw); m.next(); {
		for i, k := range keys {
			if string(m.key) == k {
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

// decodeStruct decodes a JSON value into the struct d, as encoding/json
// does: null leaves it as it is. False when the fast path gives up.
func decodeStruct(raw json.RawMessage, d structDecoder) bool {
	switch raw[0] {
	case 'n':
		return true
	case '{':
		f := fieldSet{names: d.fields()}
		for m := membersOf(raw); m.next(); {
			if !f.decode(d, m.key, m.val) {
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
	for e := elementsOf(raw); e.next(); {
		out = append(out, *new(T))
		if !decodeStruct(e.val, P(&out[len(out)-1])) {
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
	return decodeAt(source, "", t.body, v)
}
