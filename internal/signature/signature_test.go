package signature

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks reference test vector, as in the specification
// repository's own Go library test: github.com/standard-webhooks/
// standard-webhooks, libraries/go/webhook_test.go, TestWebhookSign (read at
// commit 449485caf9c0303530c19524fbe4096680aafcf1; the PHP and other
// libraries' tests use the same values). A verifier built on those
// libraries accepts what Sign produces.
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

func TestTolerance(t *testing.T) {
	k := mustSecret(t, vecSecret)
	ts := strconv.Itoa(vecTS)
	at := time.Unix(vecTS, 0)
	tests := []struct {
		name      string
		now       time.Time
		tolerance time.Duration
		ok        bool
	}{
		{"same second", at, 0, true},
		{"5 minutes late (the default, inclusive)", at.Add(5 * time.Minute), 0, true},
		{"5 minutes 1 second late", at.Add(5*time.Minute + time.Second), 0, false},
		{"5 minutes early (clock skew)", at.Add(-5 * time.Minute), 0, true},
		{"5 minutes 1 second early", at.Add(-5*time.Minute - time.Second), 0, false},
		{"negative tolerance means the default", at.Add(4 * time.Minute), -time.Second, true},
		{"custom 30s: 30s late", at.Add(30 * time.Second), 30 * time.Second, true},
		{"custom 30s: 31s late", at.Add(31 * time.Second), 30 * time.Second, false},
		{"custom 1h: 59m late", at.Add(59 * time.Minute), time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify([]Secret{k}, vecID, ts, []byte(vecBody), vecSig, tt.now, tt.tolerance)
			if tt.ok && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrTimestamp) {
				t.Fatalf("got %v, want ErrTimestamp", err)
			}
		})
	}
	// Far-away and absurd timestamps are refused, not overflowed into range.
	for _, bad := range []string{"9223372036854775807", "-9223372036854775808", "99999999999999999999", "1.5", "", " 1614265330"} {
		if err := Verify([]Secret{k}, vecID, bad, []byte(vecBody), vecSig, at, 0); err == nil {
			t.Errorf("timestamp %q accepted", bad)
		}
	}
}

func TestSignShape(t *testing.T) {
	k := mustSecret(t, vecSecret)
	if got := Sign(nil, vecID, time.Unix(vecTS, 0), []byte(vecBody)); got != "" {
		t.Errorf("no secrets: %q, want empty", got)
	}
	// Sub-second parts of the time are not signed: the header carries seconds.
	a := Sign([]Secret{k}, vecID, time.Unix(vecTS, 999_999_999), []byte(vecBody))
	if a != vecSig {
		t.Errorf("fractional second changed the signature: %q", a)
	}
	// A spec-style header with an asymmetric (v1a) signature next to ours.
	h := "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== " + vecSig
	if err := Verify([]Secret{k}, vecID, strconv.Itoa(vecTS), []byte(vecBody), h, time.Unix(vecTS, 0), 0); err != nil {
		t.Errorf("v1a next to v1: %v", err)
	}
}

// TestErrorsHideSecrets checks that no error names a secret or its key.
func TestErrorsHideSecrets(t *testing.T) {
	k := mustSecret(t, vecSecret)
	b64 := strings.TrimPrefix(vecSecret, Prefix)
	errs := []error{
		Verify([]Secret{k}, vecID, strconv.Itoa(vecTS), []byte("x"), vecSig, time.Unix(vecTS, 0), 0),
		Verify([]Secret{k}, vecID, "0", []byte(vecBody), vecSig, time.Unix(vecTS, 0), 0),
	}
	for _, in := range []string{b64, "whsec" + b64, "whsec_" + b64 + "!", "whsec_" + b64[:20]} {
		_, err := ParseSecret(in)
		errs = append(errs, err)
	}
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		if msg := err.Error(); strings.Contains(msg, b64[:8]) || strings.Contains(msg, string(k)) {
			t.Errorf("error reveals the secret: %v", err)
		}
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
		{"23 bytes", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 23)), "23 bytes"},
		{"empty", "whsec_", "0 bytes"},
		{"url-safe base64", "whsec_" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 12)), "not standard base64"},
		{"unpadded", "whsec_" + base64.RawStdEncoding.EncodeToString(make([]byte, 25)), "not standard base64"},
		{"inner space", "whsec_MfKQ9r8GKYqr TwjUPD8ILPZIo2LaLaSw", "not standard base64"},
		{"uppercase prefix", "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with"},
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
	for _, n := range []int{MinKeyBytes, 32, MaxKeyBytes} {
		if k := mustSecret(t, "whsec_"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n))); len(k) != n {
			t.Errorf("%d-byte key decoded to %d bytes", n, len(k))
		}
	}
	// encoding/base64 skips CR and LF, so a secret read from a file with
	// its line ending still parses, to the same key.
	if k := mustSecret(t, vecSecret+"\n"); !bytes.Equal(k, mustSecret(t, vecSecret)) {
		t.Error("trailing newline changed the key")
	}
	s1, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := GenerateSecret()
	if k := mustSecret(t, s1); len(k) != 32 {
		t.Errorf("generated key is %d bytes", len(k))
	}
	if s1 == s2 {
		t.Error("two generated secrets are equal")
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

// BenchmarkSign signs a 1 KiB body with one secret, and with two as during
// a rotation.
func BenchmarkSign(b *testing.B) {
	body := bytes.Repeat([]byte("p"), 1024)
	at := time.Unix(1767323045, 0)
	var secrets []Secret
	for _, s := range []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"} {
		sec, err := ParseSecret(s)
		if err != nil {
			b.Fatal(err)
		}
		secrets = append(secrets, sec)
		b.Run("secrets="+strconv.Itoa(len(secrets)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if Sign(secrets, "tsk_0123456789abcdef0123456789abcdef", at, body) == "" {
					b.Fatal("no signature")
				}
			}
		})
	}
}

// TestSignEntries checks that a rotation's value is the single-secret
// values joined by spaces, each entryLen long (entryLen sizes Sign's
// buffer; three secrets outgrow it), at any timestamp.
func TestSignEntries(t *testing.T) {
	var secrets []Secret
	for _, s := range []string{vecSecret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"} {
		secrets = append(secrets, mustSecret(t, s))
	}
	tests := []struct {
		name string
		n    int
		at   time.Time
	}{
		{"one", 1, time.Unix(vecTS, 0)},
		{"two", 2, time.Unix(vecTS, 0)},
		{"three", 3, time.Unix(vecTS, 0)},
		{"before 1970", 2, time.Unix(-1234567890, 0)},
		{"far future", 2, time.Unix(1<<40, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []string
			for _, s := range secrets[:tt.n] {
				one := Sign([]Secret{s}, vecID, tt.at, []byte(vecBody))
				if len(one) != entryLen {
					t.Errorf("entry %q is %d bytes, want %d", one, len(one), entryLen)
				}
				if err := Verify([]Secret{s}, vecID, strconv.FormatInt(tt.at.Unix(), 10), []byte(vecBody), one, tt.at, 0); err != nil {
					t.Errorf("Verify: %v", err)
				}
				want = append(want, one)
			}
			if got := Sign(secrets[:tt.n], vecID, tt.at, []byte(vecBody)); got != strings.Join(want, " ") {
				t.Errorf("Sign = %q, want %q", got, strings.Join(want, " "))
			}
		})
	}
}
