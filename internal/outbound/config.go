package outbound

import (
	"crypto/x509"
	"net/netip"
	"time"
)

// Defaults and limits.
const (
	DefaultTimeout = 10 * time.Second
	MaxTimeout     = 30 * time.Second
	DefaultMaxBody = 64 << 10
)

// Config configures a Client. The zero value is the strict default.
type Config struct {
	// AllowPrivate lists extra allowed ranges, for webhook servers inside a
	// VPC (or 127.0.0.1/32 for a server on this machine). Off by default.
	// See CheckIP for the addresses no allowance opens.
	AllowPrivate []netip.Prefix
	// Timeout bounds one request, from dialling to the last byte read.
	// 0 means DefaultTimeout; more than MaxTimeout is an error.
	Timeout time.Duration
	// UserAgent is sent on every request that does not set one.
	UserAgent string
	// RootCAs verifies server certificates; nil means the system roots.
	// It is for private PKIs (and tests); verification is never skipped.
	RootCAs *x509.CertPool
	// MaxBody is how much of the response body is read; 0 means
	// DefaultMaxBody (64 KiB).
	MaxBody int64
}
