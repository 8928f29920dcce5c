package auth

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []Config
	}{
		{"tokens as before", "tcr-prod:tcr=" + tokA + "," + tokA2 + "; hub=" + tokB + "\n",
			[]Config{{Name: "tcr-prod", Source: "tcr", Tokens: []string{tokA, tokA2}}, {Name: "hub", Tokens: []string{tokB}}}},
		{"spaces around the comma", "hub=" + tokA + " , " + tokA2, []Config{{Name: "hub", Tokens: []string{tokA, tokA2}}}},
		{"token holding ':' and '='", "hub=abc:defghijklmnop==", []Config{{Name: "hub", Tokens: []string{"abc:defghijklmnop=="}}}},
		{"explicit token scheme for a token that starts like a scheme", "hub=token:github:0123456789abcdef",
			[]Config{{Name: "hub", Scheme: SchemeToken, Tokens: []string{"github:0123456789abcdef"}}}},
		{"github", "ghcr=github:" + ghS1, []Config{{Name: "ghcr", Scheme: SchemeGitHub, Tokens: []string{ghS1}}}},
		{"github secret holding ':'", "ghcr=github:a:b:" + ghS1, []Config{{Name: "ghcr", Scheme: SchemeGitHub, Tokens: []string{"a:b:" + ghS1}}}},
		{"rotation, scheme written once", "ghcr=github:" + ghS1 + "," + ghS2, []Config{{Name: "ghcr", Scheme: SchemeGitHub, Tokens: []string{ghS1, ghS2}}}},
		{"rotation, scheme on each", "ghcr=github:" + ghS1 + ",github:" + ghS2, []Config{{Name: "ghcr", Scheme: SchemeGitHub, Tokens: []string{ghS1, ghS2}}}},
		{"rotation, scheme on the second", "ghcr=" + ghS1 + ",github:" + ghS2, []Config{{Name: "ghcr", Scheme: SchemeGitHub, Tokens: []string{ghS1, ghS2}}}},
		{"jfrog", "artifactory=jfrog:" + jfS1, []Config{{Name: "artifactory", Scheme: SchemeJFrog, Tokens: []string{jfS1}}}},
		{"nexus with a source and max-age", "nx:nexus=nexus:" + nxS1 + " max-age=30m",
			[]Config{{Name: "nx", Source: "nexus", Scheme: SchemeNexus, Tokens: []string{nxS1}, MaxAge: 30 * time.Minute}}},
		{"max-age off", "nx=nexus:" + nxS1 + "\tmax-age=off", []Config{{Name: "nx", Scheme: SchemeNexus, Tokens: []string{nxS1}, MaxAge: MaxAgeOff}}},
		{"empty", "", nil},
		{"only separators", " ; \n ;", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSpec(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			if _, err := New(got); err != nil {
				t.Errorf("New refuses the parsed spec: %v", err)
			}
		})
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []string
	}{
		{"no '='", "just-a-token-without-name", []string{"registry entry 1: want name[:source]=[scheme:]secret"}},
		{"no secret", "ghcr=", []string{"registry entry 1 (ghcr): no secret after '='"}},
		{"two schemes", "x=github:" + ghS1 + ",nexus:" + nxS1, []string{"secret 2 names the nexus scheme, an earlier one github"}},
		{"explicit token then github", "x=token:" + tokA + ",github:" + ghS1, []string{"share one scheme"}},
		{"unknown option", "x=nexus:" + nxS1 + " maxage=5m", []string{"unknown option after the secrets"}},
		{"a space inside a secret", "x=abcdefgh ijklmnopqrstu", []string{"a secret cannot contain spaces"}},
		{"bad max-age", "x=nexus:" + nxS1 + " max-age=soon", []string{"max-age: want a duration"}},
		{"negative max-age", "x=nexus:" + nxS1 + " max-age=-5m", []string{"max-age: want a duration"}},
		{"max-age twice", "x=nexus:" + nxS1 + " max-age=5m max-age=6m", []string{"max-age is given twice"}},
		{"invalid names are not echoed", "Secret-Looking=github:" + ghS1 + ",nexus:" + nxS1, []string{"registry entry 1: secret 2"}},
		{"every problem at once", "a;b=github:" + ghS1 + ",jfrog:" + jfS1 + ";ok=" + tokA + ";c=x y",
			[]string{"registry entry 1: want", "registry entry 2 (b):", "registry entry 4 (c):"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSpec(tt.spec)
			if err == nil {
				t.Fatalf("no error; got %+v", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, s := range append(allSecrets, "just-a-token", "ijklmnop", "Secret-Looking", "maxage") {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q echoes %q", err, s)
				}
			}
		})
	}
}
