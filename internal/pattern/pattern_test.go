package pattern

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestRepository(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		match   []string
		noMatch []string
	}{
		{"empty matches all", "", []string{"nginx", "team/app", "a/b/c"}, nil},
		{"double star matches all", "**", []string{"nginx", "team/app", "a/b/c"}, nil},
		{"slash double star matches all", "/**", []string{"nginx", "a/b/c"}, nil},
		{"exact", "nginx", []string{"nginx"}, []string{"nginx2", "team/nginx", "ngin"}},
		{"leading slash optional", "/nginx", []string{"nginx"}, []string{"/nginx", "x/nginx"}},
		{"doc: /path* first level starting with path", "/path*", []string{"path", "path1", "pathology"}, []string{"path/x", "apath", "path1/sub"}},
		{"doc: /{path1, path2}/** under path1 or path2", "/{path1, path2}/**", []string{"path1/a", "path2/a/b/c"}, []string{"path3/a", "path1", "path12/a", "x/path1/a"}},
		{"star stays in segment", "team/*", []string{"team/app", "team/x"}, []string{"team/a/b", "team", "other/app"}},
		{"double star whole segment crosses", "team/**", []string{"team/app", "team/a/b/c"}, []string{"team", "teams/app"}},
		{"double star not a segment is a star", "/path**", []string{"path", "path1", "pathx"}, []string{"path/a", "path1/a/b"}},
		{"double star glued before is a star", "**x", []string{"x", "abx"}, []string{"a/x"}},
		{"triple star whole segment", "a/***", []string{"a/b", "a/b/c"}, nil},
		{"double star in middle", "a/**/z", []string{"a/b/z", "a/b/c/z"}, []string{"a/z/y", "b/c/z"}},
		{"leading double star", "**/app", []string{"x/app", "x/y/app"}, []string{"app2", "x/app/y"}},
		{"question mark", "app?", []string{"app1", "appx"}, []string{"app", "app12", "app/"}},
		{"question mark not slash", "a?b", []string{"a-b"}, []string{"a/b"}},
		{"alternatives without spaces", "{api,web}", []string{"api", "web"}, []string{"apiweb", "db"}},
		{"alternatives with spaces", "{ api ,  web }", []string{"api", "web"}, []string{" api", "api "}},
		{"alternatives with globs", "{front*, back?}/app", []string{"frontend/app", "back1/app"}, []string{"back12/app", "x/app"}},
		{"nested alternatives", "{a,{b,c}}x", []string{"ax", "bx", "cx"}, []string{"dx"}},
		{"double star inside alternative is a segment", "{team/**, other}", []string{"team/a/b", "other"}, []string{"team", "other/x"}},
		{"dots dashes underscores literal", "my.app_v-1", []string{"my.app_v-1"}, []string{"myxapp_v-1"}},
		{"uppercase literal (Aliyun)", "repoTest", []string{"repoTest"}, []string{"repotest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Repository(tt.pattern)
			if err != nil {
				t.Fatalf("Repository(%q): %v", tt.pattern, err)
			}
			for _, s := range tt.match {
				if !m.Match(s) {
					t.Errorf("%q should match %q", tt.pattern, s)
				}
			}
			for _, s := range tt.noMatch {
				if m.Match(s) {
					t.Errorf("%q should not match %q", tt.pattern, s)
				}
			}
		})
	}
}

func TestTag(t *testing.T) {
	tests := []struct {
		name    string
		filter  string
		match   []string
		noMatch []string
	}{
		{"empty matches all", "", []string{"latest", "1.0", ""}, nil},
		{"exact", "latest", []string{"latest"}, []string{"latest2", "Latest"}},
		{"doc: 1.? is 1.0 to 1.9", "1.?", []string{"1.0", "1.5", "1.9"}, []string{"1.10", "10.1", "1."}},
		{"doc: {env1*, env2*}", "{env1*, env2*}", []string{"env1", "env1-prod", "env2x"}, []string{"env3", "xenv1"}},
		{"prefix glob", "release-*", []string{"release-", "release-1.2"}, []string{"release", "pre-release-1"}},
		{"regex full match (ACR)", "regex:release-v.*", []string{"release-v", "release-v1.2"}, []string{"release-1", "xrelease-v1"}},
		{"regex anchored even with alternation", "regex:a|b", []string{"a", "b"}, []string{"ab", "xa", "bx"}},
		{"regex semver", `regex:v\d+\.\d+\.\d+`, []string{"v1.2.3", "v10.0.1"}, []string{"v1.2", "v1.2.3-rc1"}},
		{"list", "v1;v2; latest ", []string{"v1", "v2", "latest"}, []string{"v3", " latest", "v1;v2"}},
		{"list of one with trailing separator", "stable;", []string{"stable"}, []string{"stable;"}},
		{"digest-like tag", "sha256-*", []string{"sha256-abc"}, []string{"sha256:abc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Tag(tt.filter)
			if err != nil {
				t.Fatalf("Tag(%q): %v", tt.filter, err)
			}
			for _, s := range tt.match {
				if !m.Match(s) {
					t.Errorf("%q should match %q", tt.filter, s)
				}
			}
			for _, s := range tt.noMatch {
				if m.Match(s) {
					t.Errorf("%q should not match %q", tt.filter, s)
				}
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name    string
		compile func(string) (Matcher, error)
		pattern string
		reason  string
	}{
		{"unclosed brace", Repository, "{a,b", "missing '}'"},
		{"stray close brace", Repository, "a}", "unbalanced '}'"},
		{"comma outside braces", Repository, "a,b", "outside"},
		{"character class", Repository, "app[0-9]", "not supported"},
		{"escape", Repository, `app\*`, "not supported"},
		{"space outside braces", Repository, "my app", "space"},
		{"space inside alternative", Repository, "{my app, b}", "space"},
		{"control char", Repository, "a\nb", "control"},
		{"non-ASCII", Repository, "caf\u00e9", "non-ASCII"},
		{"bad regex", Tag, "regex:(", "bad RE2"},
		{"empty regex", Tag, "regex:", "empty regular expression"},
		{"list too long", Tag, "1;2;3;4;5;6;7;8;9;10;11", "at most 10"},
		{"list with wildcard", Tag, "v1;v2*", "exact tags only"},
		{"list with duplicate", Tag, "v1;v1", "twice"},
		{"list empty", Tag, ";;", "empty"},
		{"tag glob unbalanced", Tag, "{a", "missing '}'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.compile(tt.pattern)
			if err == nil {
				t.Fatalf("%q: expected an error", tt.pattern)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not mention %q", err, tt.reason)
			}
		})
	}
}

func TestTranslate(t *testing.T) {
	tests := []struct{ in, out string }{
		{"", ""},
		{"a/**", "a/**"},
		{"a**", "a*"},
		{"**a", "*a"},
		{"a/***/b", "a/**/b"},
		{"{ a , b }", "{a,b}"},
		{"{ ** , x}", "{**,x}"},
		{"x{**,y}", "x{*,y}"},
		{"{a/**}/b", "{a/**}/b"},
	}
	for _, tt := range tests {
		got, err := Translate(tt.in)
		if err != nil || got != tt.out {
			t.Errorf("Translate(%q) = %q, %v; want %q", tt.in, got, err, tt.out)
		}
	}
}

// reference turns a translated pattern into an anchored regular expression,
// written independently of gobwas/glob so the two can be compared.
func reference(g string) *regexp.Regexp {
	if g == "" {
		return regexp.MustCompile("(?s).*") // an empty pattern matches everything
	}
	var b strings.Builder
	b.WriteString("(?s)^")
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '*':
			if i+1 < len(g) && g[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '{':
			b.WriteString("(?:")
		case '}':
			b.WriteString(")")
		case ',':
			b.WriteString("|")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func TestReferenceAgreement(t *testing.T) {
	patterns := []string{"a*b*c", "{a,b}*", "*{a,b}", "a/**/b", "**/x", "{x*,y?}/**", "?*?", "*.*", "{a,ab}{b,}c"}
	names := []string{"", "a", "ab", "abc", "aXbYc", "a/b", "a/x/b", "x/x", "y1/z/q", "xx", "ab.c", "abbc", "abc", "ac"}
	for _, p := range patterns {
		g, err := Translate(p)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Repository(p)
		if err != nil {
			t.Fatal(err)
		}
		ref := reference(g)
		for _, n := range names {
			if got, want := m.Match(n), ref.MatchString(n); got != want {
				t.Errorf("pattern %q name %q: glob %v, reference %v", p, n, got, want)
			}
		}
	}
}

// FuzzRepository checks that compiling never panics and that the compiled
// glob agrees with an independent regular-expression reference.
func FuzzRepository(f *testing.F) {
	for _, s := range [][2]string{
		{"/path*", "path1"}, {"/{path1, path2}/**", "path1/a/b"}, {"a/**/b", "a/x/b"},
		{"1.?", "1.5"}, {"{env1*, env2*}", "env2x"}, {"{a,{b,c}}x", "cx"}, {"**", "a/b"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, p, name string) {
		if !isASCII(name) {
			// Registry names are ASCII (the distribution reference grammar);
			// gobwas/glob's "?" is not rune-exact on multi-byte names.
			t.Skip()
		}
		m, err := Repository(p)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		g, err := Translate(strings.TrimPrefix(p, "/"))
		if err != nil {
			t.Fatalf("Repository accepted %q but Translate failed: %v", p, err)
		}
		if got, want := m.Match(name), reference(g).MatchString(name); got != want {
			t.Fatalf("pattern %q (glob %q) name %q: glob %v, reference %v", p, g, name, got, want)
		}
	})
}

// FuzzTag checks that tag filters never panic on any input.
func FuzzTag(f *testing.F) {
	for _, s := range []string{"", "latest", "regex:release-v.*", "v1;v2", "{a, b}*", "regex:("} {
		f.Add(s, "v1")
	}
	f.Fuzz(func(t *testing.T, p, tag string) {
		m, err := Tag(p)
		if err != nil {
			return
		}
		m.Match(tag)
	})
}

func TestExpansionKeepsStarsApart(t *testing.T) {
	m, err := Repository("{a*,b}*")
	if err != nil {
		t.Fatal(err)
	}
	if m.Match("ax/y") {
		t.Error(`"{a*,b}*" must not cross "/"`)
	}
	if !m.Match("axy") || !m.Match("b") || !m.Match("bz") {
		t.Error(`"{a*,b}*" should match axy, b and bz`)
	}
}

func TestTooManyAlternatives(t *testing.T) {
	_, err := Repository("{a,b,c,d}{a,b,c,d}{a,b,c,d}{a,b}")
	if err == nil || !strings.Contains(err.Error(), "more than 64") {
		t.Fatalf("want too many alternatives, got %v", err)
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func TestSemverTags(t *testing.T) {
	tests := []struct {
		filter, tag string
		want        bool
	}{
		{"semver:>=1.4 <2", "1.4.0", true},
		{"semver:>=1.4 <2", "v1.4.0", true},
		{"semver:>=1.4 <2", "1.9.12", true},
		{"semver:>=1.4 <2", "1.3.9", false},
		{"semver:>=1.4 <2", "2.0.0", false},
		{"semver:>=1.4 <2", "1.5", true},           // read as 1.5.0
		{"semver:>=1.4 <2", "v1", false},           // 1.0.0
		{"semver:>=1.4 <2", "1.5.0-rc.1", false},   // a prerelease, and the range names none
		{"semver:>=1.4 <2", "1.5.0+build.7", true}, // build metadata is no prerelease
		{"semver:>=1.4 <2", "latest", false},
		{"semver:>=1.4 <2", "sha-1a2b3c", false},
		{"semver:>=1.4 <2", "", false},
		{"semver:>=1.4 <2", "1.4.0.1", false},          // four parts: not a semantic version
		{"semver:>=1.5.0-rc.1 <2", "1.5.0-rc.2", true}, // the range names a prerelease of 1.5.0
		{"semver:>=1.5.0-rc.1 <2", "1.5.0-rc.0", false},
		{"semver:>=1.5.0-rc.1 <2", "1.5.0", true},
		{"semver:>=1.5.0-rc.1 <2", "1.6.0-rc.1", true}, // once a range names a prerelease, every prerelease in it matches (semver/v3, unlike npm)
		{"semver:^1.2", "1.2.0", true},
		{"semver:^1.2", "1.99.0", true},
		{"semver:^1.2", "2.0.0", false},
		{"semver:^0.3", "0.3.9", true},
		{"semver:^0.3", "0.4.0", false},
		{"semver:~1.2.3", "1.2.9", true},
		{"semver:~1.2.3", "1.3.0", false},
		{"semver:1.x", "1.7.1", true},
		{"semver:1.x", "2.1.0", false},
		{"semver:1.2.3", "v1.2.3", true},
		{"semver:1.2.3", "1.2.4", false},
		{"semver:<1 || >=3", "0.9.0", true},
		{"semver:<1 || >=3", "2.0.0", false},
		{"semver:<1 || >=3", "3.0.1", true},
		{"semver:>=1.0.0-0", "1.0.0-alpha", true}, // -0: every prerelease of 1.0.0 and later
		{"semver:*", "0.0.1", true},
		{"semver:*", "main", false},
		{"semver:!=1.2.3", "1.2.4", true},
		{"semver:!=1.2.3", "1.2.3", false},
	}
	for _, tt := range tests {
		m, err := Tag(tt.filter)
		if err != nil {
			t.Fatalf("%s: %v", tt.filter, err)
		}
		if got := m.Match(tt.tag); got != tt.want {
			t.Errorf("%s matches %q = %v, want %v", tt.filter, tt.tag, got, tt.want)
		}
	}
	if len(tests) < 30 {
		t.Fatalf("%d cases", len(tests))
	}
	for _, bad := range []string{"semver:", "semver:  ", "semver:>=1.x.y", "semver:>>1", "semver:1.2.3.4", "semver:=>"} {
		if _, err := Tag(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want an invalid pattern", bad, err)
		}
	}
}
