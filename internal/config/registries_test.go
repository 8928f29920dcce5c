package config

import (
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/auth"
)

func TestFromEnvRegistries(t *testing.T) {
	const (
		tok    = "0123456789abcdef0123"
		github = "ghcr-secret-0123456789"
		nexus  = "nexus-secret-0123456789"
	)
	tests := []struct {
		name  string
		value string
		want  []auth.Config
		err   string // part of the error; "" for none
	}{
		{"token, as before", "harbor=" + tok, []auth.Config{{Name: "harbor", Tokens: []string{tok}}}, ""},
		{"schemes and max-age", "harbor:harbor=" + tok + ";ghcr=github:" + github + "; nx=nexus:" + nexus + " max-age=30m",
			[]auth.Config{
				{Name: "harbor", Source: "harbor", Tokens: []string{tok}},
				{Name: "ghcr", Scheme: auth.SchemeGitHub, Tokens: []string{github}},
				{Name: "nx", Scheme: auth.SchemeNexus, Tokens: []string{nexus}, MaxAge: 30 * time.Minute},
			}, ""},
		{"short secret", "ghcr=github:short-secret", nil, "REGTRIGGER_REGISTRIES: registry \"ghcr\": secret 1 is shorter than 16"},
		{"max-age on a token", "harbor=" + tok + " max-age=5m", nil, "max-age applies only to"},
		{"two schemes", "x=github:" + github + ",nexus:" + nexus, nil, "share one scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(env(map[string]string{EnvRegistries: tt.value}))
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(c.Registries) != len(tt.want) {
					t.Fatalf("got %+v", c.Registries)
				}
				for i, w := range tt.want {
					g := c.Registries[i]
					if g.Name != w.Name || g.Source != w.Source || g.Scheme != w.Scheme || g.MaxAge != w.MaxAge || strings.Join(g.Tokens, ",") != strings.Join(w.Tokens, ",") {
						t.Errorf("registry %d: got %+v, want %+v", i, g, w)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, want %q", err, tt.err)
			}
			for _, s := range []string{tok, github, nexus, "short-secret"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error echoes a secret: %v", err)
				}
			}
		})
	}
}
