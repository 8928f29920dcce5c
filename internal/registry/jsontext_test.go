package registry

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// checkRead checks that b reads as encoding/json reads it: valid agrees
// with json.Valid; an object indexes as a map of raw values decoded by
// encoding/json would; and every struct the fast path decodes from it, or
// from an object nested in it, without giving up, is what json.Unmarshal
// makes of the same text.
func checkRead(t *testing.T, b []byte) {
	t.Helper()
	if got, want := valid(b), json.Valid(b); got != want {
		t.Fatalf("valid = %v, json.Valid = %v", got, want)
	}
	b = bytes.TrimSpace(b)
	if !valid(b) || b[0] != '{' {
		return
	}
	var want map[string]json.RawMessage
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	o := objectOf(b)
	got := map[string]json.RawMessage{}
	for _, m := range o {
		got[string(m.key)] = m.val
	}
	if !maps.EqualFunc(got, want, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
		t.Fatalf("objectOf = %q, encoding/json: %q", got, want)
	}
	for k, v := range want {
		if !bytes.Equal(o.get(k), v) {
			t.Fatalf("get(%q) = %q, want %q", k, o.get(k), v)
		}
	}
	checkStructs(t, b)
	for _, raw := range want {
		checkStructs(t, raw)
	}
}

// fastTypes makes one of each struct the fast path decodes.
var fastTypes = []func() structDecoder{
	func() structDecoder { return new(harborEnvelope) },
	func() structDecoder { return new(harborData) },
	func() structDecoder { return new(harborResource) },
	func() structDecoder { return new(harborRepo) },
	func() structDecoder { return new(harborCloudEvent) },
	func() structDecoder { return new(aliyunBody) },
	func() structDecoder { return new(aliyunPushData) },
	func() structDecoder { return new(aliyunRepository) },
	func() structDecoder { return new(dockerHubBody) },
	func() structDecoder { return new(dockerHubPushData) },
	func() structDecoder { return new(dockerHubRepository) },
	func() structDecoder { return new(distributionEnvelope) },
	func() structDecoder { return new(distributionEvent) },
	func() structDecoder { return new(distributionTarget) },
	func() structDecoder { return new(distributionRequest) },
	func() structDecoder { return new(distributionActor) },
	func() structDecoder { return new(azureData) },
	func() structDecoder { return new(azureTarget) },
	func() structDecoder { return new(eventGridEvent) },
	func() structDecoder { return new(ecrEnvelope) },
	func() structDecoder { return new(ecrImageDetail) },
	func() structDecoder { return new(jfrogBody) },
	func() structDecoder { return new(jfrogData) },
	func() structDecoder { return new(nexusBody) },
	func() structDecoder { return new(nexusComponentData) },
	func() structDecoder { return new(nexusAssetData) },
	func() structDecoder { return new(pubsubEnvelope) },
	func() structDecoder { return new(pubsubMessage) },
	func() structDecoder { return new(garMessage) },
	func() structDecoder { return new(quayBody) },
	func() structDecoder { return new(ghcrBody) },
	func() structDecoder { return new(githubRepository) },
	func() structDecoder { return new(githubUser) },
	func() structDecoder { return new(ghcrPackage) },
	func() structDecoder { return new(ghcrVersion) },
	func() structDecoder { return new(ghcrContainerMetadata) },
	func() structDecoder { return new(ghcrTag) },
	func() structDecoder { return new(ghcrManifest) },
}

// checkStructs decodes raw (valid JSON) into each of fastTypes with the
// fast path and, unless it gives up, with encoding/json, and compares.
func checkStructs(t *testing.T, raw json.RawMessage) {
	t.Helper()
	for _, make := range fastTypes {
		got, want := make(), make()
		if !decodeStruct(raw, got) {
			continue
		}
		if err := json.Unmarshal(raw, want); err != nil {
			t.Fatalf("%T: the fast path decoded what encoding/json refuses (%v): %s", got, err, raw)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%T: fast path %+v, encoding/json %+v: %s", got, got, want, raw)
		}
	}
}

// fastFormats gives, for each corpus format (MANIFEST.json's "format")
// whose parser has struct decoders, the struct its bodies decode into.
var fastFormats = map[string]func() structDecoder{
	"harbor-default-v1":         func() structDecoder { return new(harborEnvelope) },
	"harbor-default-v2":         func() structDecoder { return new(harborEnvelope) },
	"harbor-cloudevents":        func() structDecoder { return new(harborCloudEvent) },
	"aliyun":                    func() structDecoder { return new(aliyunBody) },
	"dockerhub":                 func() structDecoder { return new(dockerHubBody) },
	"distribution-envelope":     func() structDecoder { return new(distributionEnvelope) },
	"acr-webhook":               func() structDecoder { return new(azureData) },
	"acr-eventgrid":             func() structDecoder { return new(eventGridEvent) },
	"acr-eventgrid-cloudevents": func() structDecoder { return new(eventGridEvent) },
	"ecr-eventbridge":           func() structDecoder { return new(ecrEnvelope) },
	"jfrog":                     func() structDecoder { return new(jfrogBody) },
	"nexus":                     func() structDecoder { return new(nexusBody) },
	"pubsub-push-envelope":      func() structDecoder { return new(pubsubEnvelope) },
	"gar-message":               func() structDecoder { return new(garMessage) },
	"quay":                      func() structDecoder { return new(quayBody) },
	"quay-legacy":               func() structDecoder { return new(quayBody) },
	"github-package":            func() structDecoder { return new(ghcrBody) },
	"github-registry_package":   func() structDecoder { return new(ghcrBody) },
}

// TestFastPathTaken: the corpus bodies of the formats with struct
// decoders decode without falling back to encoding/json, and so does the
// JSON they carry inside (Event Grid's data, ECR's detail, Pub/Sub's data).
func TestFastPathTaken(t *testing.T) {
	for _, e := range manifest(t) {
		make, ok := fastFormats[e.Format]
		if !ok {
			continue
		}
		top, err := decode(notification(t, e).Body)
		if err != nil {
			t.Fatal(err)
		}
		d := make()
		if top.body == nil || !decodeStruct(top.body, d) {
			t.Errorf("%s: the fast path gave up", e.File)
		}
		switch d := d.(type) {
		case *eventGridEvent:
			data, err := eventGridData(d.Data, "data")
			if err != nil || !decodeStruct(data, new(azureData)) {
				t.Errorf("%s: the fast path gave up on the data (%v)", e.File, err)
			}
		case *ecrEnvelope:
			if d.DetailType == ecrImageAction && !decodeStruct(d.Detail, new(ecrImageDetail)) {
				t.Errorf("%s: the fast path gave up on the detail", e.File)
			}
		case *pubsubEnvelope:
			data, err := base64.StdEncoding.DecodeString(d.Message.Data)
			if err != nil || !valid(data) || !decodeStruct(trimSpace(data), new(garMessage)) {
				t.Errorf("%s: the fast path gave up on the message data (%v)", e.File, err)
			}
		}
	}
}

// corpusBodies returns every body of the fixture corpus (the same as
// ../shared/fixtures/registry-payloads), by path.
func corpusBodies(t testing.TB) map[string][]byte {
	bodies := map[string][]byte{}
	err := filepath.WalkDir(fixtures, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") || d.Name() == "MANIFEST.json" {
			return err
		}
		bodies[path], err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return bodies
}

// variants returns b and bodies made from it that encoding/json reads
// in its own ways: keys in another case, repeated, escaped, non-ASCII.
func variants(b []byte) [][]byte {
	return [][]byte{
		b,
		bytes.ToUpper(b),
		bytes.ReplaceAll(b, []byte(`"tag"`), []byte(`"Tag"`)),
		bytes.ReplaceAll(b, []byte(`"type"`), []byte(`"\u0074ype"`)),
		bytes.Replace(b, []byte(`"repository": {`), []byte(`"repository": null, "repository": {`), 1),
		bytes.ReplaceAll(b, []byte(`"digest"`), []byte(`"digeſt"`)),
		bytes.ReplaceAll(b, []byte(`: "`), []byte(`: null, "x": "`)),
		bytes.Replace(b, []byte(`"`), []byte(`\"`), 1), // not JSON
		append([]byte("\f"), b...),                     // not JSON, but trimmed
	}
}

// TestReadAgrees runs checkRead over the corpus and variants of it.
func TestReadAgrees(t *testing.T) {
	for path, b := range corpusBodies(t) {
		for _, v := range variants(b) {
			t.Run(path, func(t *testing.T) { checkRead(t, v) })
		}
	}
}

// maxDepth is how deeply encoding/json (and jsontext) let arrays and
// objects nest.
const maxDepth = 10000

func TestValid(t *testing.T) {
	for _, s := range []string{
		``, ` `, `{`, `}`, `{}`, `[]`, ` [ ] `, `[1,]`, `[,1]`, `{"a":1,}`, `{"a" 1}`, `{1:1}`, `{"a":1}x`,
		`0`, `-0`, `01`, `-`, `1.`, `1.5`, `1e`, `1e+`, `1E-7`, `.5`, `+1`, `1.5e3`,
		`true`, `tru`, `truex`, `null`, `nul`, `false`,
		`"a"`, `"a`, `"\u00e9"`, `"\u00g9"`, `"\x"`, `"\/"`, "\"\x01\"", "\"\xff\"", `"\""`, `"\\"`,
		`[[[]]]`, `[{]}`, `{"a":[}`, "\f{}", "{}\v",
		strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
		strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
		strings.Repeat(`{"a":`, maxDepth) + "1" + strings.Repeat("}", maxDepth),
		strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1),
	} {
		if got, want := valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("valid(%.40q) = %v, json.Valid says %v", s, got, want)
		}
	}
}

// FuzzRead runs checkRead on anything.
func FuzzRead(f *testing.F) {
	for _, b := range corpusBodies(f) {
		f.Add(b)
	}
	f.Add([]byte(`[1,-0.5e+7,"a\u00e9\n",true,false,null,{"a":{}}]`))
	f.Add([]byte(`{"a":1,"A":2,"a":3,"\u0061":4,"b\"":{"c":[1,"]}"]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkRead(t, b)
	})
}

// checkUnquote checks unquote against encoding/json on s as the text of a
// JSON string.
func checkUnquote(t *testing.T, s string) {
	t.Helper()
	lit := []byte(`"` + s + `"`)
	var want string
	if json.Unmarshal(lit, &want) != nil {
		return
	}
	if got := unquote(lit); got != want {
		t.Fatalf("unquote(%q) = %q, encoding/json says %q", lit, got, want)
	}
}

func TestUnquote(t *testing.T) {
	for _, s := range []string{
		``, `a`, `é`, "\xff", "a\xffb\xc3", `\"\\\/\b\f\n\r\t`, `\u00e9\u00E9`, `\u0000`,
		`\ud83d\ude00`, `\uD83D\uDE00x`, `\ud83d`, `\ud83dx`, `\ude00\ud83d`, `\ud83d\u0041`, `\ud83d\ud83d\ude00`,
		`{\"a\":\"b\"}`, "\u2028", `\u2028`,
	} {
		checkUnquote(t, s)
	}
}

// FuzzUnquote: unquote agrees with encoding/json.
func FuzzUnquote(f *testing.F) {
	f.Add(`\ud83d\ude00 \ud83d\u00e9 \/\n` + "\xffé")
	f.Fuzz(checkUnquote)
}

// TestValuesAreSlicesOfTheBody: the values decode indexes, and those the
// iterators yield, point into the body (jsontext parses a bytes.Buffer's
// own bytes), so a json.RawMessage field keeps no copy and stays valid.
func TestValuesAreSlicesOfTheBody(t *testing.T) {
	body := []byte(` {"a": {"b": [1, "x", {"c": null}]}, "d": "e"} `)
	within := func(v []byte) bool {
		return len(v) > 0 &&
			uintptr(unsafe.Pointer(&v[0])) >= uintptr(unsafe.Pointer(&body[0])) &&
			uintptr(unsafe.Pointer(&v[len(v)-1])) <= uintptr(unsafe.Pointer(&body[len(body)-1]))
	}
	top, err := decode(body)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		vals []json.RawMessage
	}{
		{"top level", []json.RawMessage{top.obj.get("a"), top.obj.get("d")}},
		{"members", func() (out []json.RawMessage) {
			for _, v := range members(top.obj.get("a")) {
				out = append(out, v)
			}
			return out
		}()},
		{"elements", func() (out []json.RawMessage) {
			for v := range elements(objectOf(top.obj.get("a")).get("b")) {
				out = append(out, v)
			}
			return out
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.vals) == 0 {
				t.Fatal("no values")
			}
			for _, v := range tt.vals {
				if !within(v) {
					t.Errorf("%q is a copy, not a slice of the body", v)
				}
			}
		})
	}
}
