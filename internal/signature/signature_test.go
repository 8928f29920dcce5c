package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks reference test vector (the libraries of
// github.com/standard-webhooks/standard-webhooks use it in their tests).
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustSecret(t testing.TB, s string) Secret {
	t.Helper()
	k, err := ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestReferenceVector(t *testing.T) {
	k := mustSecret(t, vecSecret)
	got := Sign([]Secret{k}, vecID, time.Unix(vecTS, 0), []byte(vecBody))
	if got != vecSig {
		t.Fatalf("Sign = %q, want %q", got, vecSig)
	}
	// The same value computed directly with crypto/hmac, independently.
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(vecSecret, Prefix))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(vecID + "." + strconv.Itoa(vecTS) + "." + vecBody))
	if direct := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)); direct != got {
		t.Fatalf("direct HMAC %q differs from Sign %q", direct, got)
	}
	if err := Verify([]Secret{k}, vecID, strconv.Itoa(vecTS), []byte(vecBody), vecSig, time.Unix(vecTS+10, 0), 0); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestRotation(t *testing.T) {
	oldK := mustSecret(t, vecSecret)
	newS, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	newK := mustSecret(t, newS)
	now := time.Unix(1700000000, 0)
	h := Sign([]Secret{oldK, newK}, "id", now, []byte("body"))
	if n := len(strings.Fields(h)); n != 2 {
		t.Fatalf("want two signatures, got %q", h)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	for name, keys := range map[string][]Secret{"old only": {oldK}, "new only": {newK}, "both": {newK, oldK}} {
		if err := Verify(keys, "id", ts, []byte("body"), h, now, 0); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	k := mustSecret(t, vecSecret)
	ts := strconv.Itoa(vecTS)
	now := time.Unix(vecTS, 0)
	other := mustSecret(t, "whsec_"+base64.StdEncoding.EncodeToString([]byte("another key of 32 bytes length!!")))
	tests := []struct {
		name      string
		keys      []Secret
		id, ts    string
		body, sig string
		now       time.Time
		want      error
	}{
		{"tampered body", []Secret{k}, vecID, ts, `{"test": 1}`, vecSig, now, ErrNoMatch},
		{"tampered id", []Secret{k}, "msg_other", ts, vecBody, vecSig, now, ErrNoMatch},
		{"tampered timestamp", []Secret{k}, vecID, strconv.Itoa(vecTS + 1), vecBody, vecSig, now, ErrNoMatch},
		{"wrong secret", []Secret{other}, vecID, ts, vecBody, vecSig, now, ErrNoMatch},
		{"unknown version", []Secret{k}, vecID, ts, vecBody, strings.Replace(vecSig, "v1,", "v2,", 1), now, ErrNoMatch},
		{"too old", []Secret{k}, vecID, ts, vecBody, vecSig, now.Add(6 * time.Minute), ErrTimestamp},
		{"from the future", []Secret{k}, vecID, ts, vecBody, vecSig, now.Add(-6 * time.Minute), ErrTimestamp},
		{"timestamp not a number", []Secret{k}, vecID, "yesterday", vecBody, vecSig, now, ErrTimestamp},
		{"missing signature", []Secret{k}, vecID, ts, vecBody, "", now, ErrMissing},
		{"missing id", []Secret{k}, "", ts, vecBody, vecSig, now, ErrMissing},
		{"no secrets", nil, vecID, ts, vecBody, vecSig, now, ErrNoMatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.keys, tt.id, tt.ts, []byte(tt.body), tt.sig, tt.now, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// A valid signature among unknown ones still verifies.
	if err := Verify([]Secret{k}, vecID, ts, []byte(vecBody), "v2,abc v1,zzz "+vecSig, now, 0); err != nil {
		t.Errorf("mixed header: %v", err)
	}
}

func TestParseSecret(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with"},
		{"bad base64", "whsec_not*base64!", "not standard base64"},
		{"too short", "whsec_" + base64.StdEncoding.EncodeToString([]byte("short")), "5 bytes"},
		{"too long", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)), "65 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSecret(tt.in)
			if !errors.Is(err, ErrSecret) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if rest := strings.TrimPrefix(tt.in, Prefix); len(rest) > 6 && strings.Contains(err.Error(), rest) {
				t.Errorf("error echoes the secret: %v", err)
			}
		})
	}
	s, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	if k := mustSecret(t, s); len(k) != 32 {
		t.Errorf("generated key is %d bytes", len(k))
	}
}

// FuzzVerify checks that Verify never panics, and that what Sign produces
// always verifies.
func FuzzVerify(f *testing.F) {
	f.Add(vecID, strconv.Itoa(vecTS), []byte(vecBody), vecSig)
	f.Add("", "", []byte{}, "v1,")
	f.Add("id", "-1", []byte("x"), "v1,,, v1")
	k := mustSecret(f, vecSecret)
	f.Fuzz(func(t *testing.T, id, ts string, body []byte, header string) {
		_ = Verify([]Secret{k}, id, ts, body, header, time.Unix(vecTS, 0), 0)
		if id == "" {
			return
		}
		now := time.Unix(vecTS, 0)
		h := Sign([]Secret{k}, id, now, body)
		if err := Verify([]Secret{k}, id, strconv.Itoa(vecTS), body, h, now, 0); err != nil {
			t.Fatalf("own signature does not verify: %v", err)
		}
	})
}
