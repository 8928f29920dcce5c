package delivery_test

import (
	"testing"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/delivery/healthtest"
)

func TestMemHealth(t *testing.T) {
	healthtest.Run(t, &delivery.MemHealth{})
}

func TestTargetKey(t *testing.T) {
	tests := []struct{ url, want string }{
		{"https://Hooks.Example.com/deploy?x=1", "https://hooks.example.com:443"},
		{"https://hooks.example.com:443/a", "https://hooks.example.com:443"},
		{"http://hooks.example.com/a", "http://hooks.example.com:80"},
		{"http://hooks.example.com:8080/a", "http://hooks.example.com:8080"},
		{"http://[2001:db8::1]:8080/", "http://[2001:db8::1]:8080"},
		{"::not a url", ""},
	}
	for _, tt := range tests {
		if got := delivery.TargetKey(tt.url); got != tt.want {
			t.Errorf("TargetKey(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}
