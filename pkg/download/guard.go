package download

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// blockedRange is an address range a download may not connect to unless
// private networks are allowed.
type blockedRange struct {
	prefix netip.Prefix
	why    string
}

// blockedRanges lists special-purpose ranges (IANA IPv4/IPv6 special-purpose
// registries) that are not the public Internet. IPv4-mapped IPv6 addresses
// are unmapped before the check, so ::ffff:127.0.0.1 is refused as loopback.
func blockedRanges() []blockedRange {
	table := []struct{ cidr, why string }{
		{"0.0.0.0/8", "unspecified/\"this network\""},
		{"10.0.0.0/8", "private (RFC 1918)"},
		{"100.64.0.0/10", "carrier-grade NAT (RFC 6598)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local (cloud metadata)"},
		{"172.16.0.0/12", "private (RFC 1918)"},
		{"192.0.0.0/24", "IETF protocol assignments"},
		{"192.0.2.0/24", "documentation (TEST-NET-1)"},
		{"192.88.99.0/24", "6to4 relay anycast"},
		{"192.168.0.0/16", "private (RFC 1918)"},
		{"198.18.0.0/15", "benchmarking"},
		{"198.51.100.0/24", "documentation (TEST-NET-2)"},
		{"203.0.113.0/24", "documentation (TEST-NET-3)"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved/broadcast"},
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/96", "IPv4-compatible IPv6"},
		{"64:ff9b::/96", "NAT64 (embeds an IPv4 address)"},
		{"64:ff9b:1::/48", "local NAT64"},
		{"100::/64", "discard-only"},
		{"2001::/32", "Teredo (embeds an IPv4 address)"},
		{"2001:db8::/32", "documentation"},
		{"2002::/16", "6to4 (embeds an IPv4 address)"},
		{"fc00::/7", "unique local (private)"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local"},
		{"ff00::/8", "multicast"},
	}
	out := make([]blockedRange, len(table))
	for i, r := range table {
		out[i] = blockedRange{prefix: netip.MustParsePrefix(r.cidr), why: r.why}
	}
	return out
}

// checkAddr returns why addr may not be connected to, or "" if it may.
func (c *Client) checkAddr(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	for _, r := range c.blocked {
		if r.prefix.Contains(addr) {
			return r.why
		}
	}
	return ""
}

// hostRule is one entry of the allow-list: an exact host, or (wildcard) any
// subdomain of suffix.
type hostRule struct {
	host     string
	wildcard bool
}

func parseHostRules(hosts []string) ([]hostRule, error) {
	var rules []hostRule
	for _, h := range hosts {
		h = normalizeHost(h)
		if h == "" {
			continue
		}
		r := hostRule{host: h}
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			r = hostRule{host: rest, wildcard: true}
		}
		if _, err := netip.ParseAddr(r.host); err != nil && (r.host == "" || strings.ContainsAny(r.host, "*/:@[] ")) {
			return nil, fmt.Errorf("invalid allowed host %q", h)
		}
		rules = append(rules, r)
	}
	if len(rules) == 0 {
		return nil, fmt.Errorf("no allowed hosts configured")
	}
	return rules, nil
}

func normalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}

func (c *Client) hostAllowed(host string) bool {
	host = normalizeHost(host)
	for _, r := range c.hosts {
		if r.wildcard {
			if strings.HasSuffix(host, "."+r.host) {
				return true
			}
		} else if host == r.host {
			return true
		}
	}
	return false
}

// checkURL applies the rules that need no network: scheme, userinfo, host
// allow-list. The address itself is checked when dialling.
func (c *Client) checkURL(u *url.URL) *Error {
	switch u.Scheme {
	case "https":
	case "http":
		if !c.cfg.AllowPrivateNetworks {
			return permanent(fmt.Sprintf("refused %s: scheme http not allowed (https only)", redact(u)), nil)
		}
	default:
		return permanent(fmt.Sprintf("refused %s: scheme %q not allowed", redact(u), u.Scheme), nil)
	}
	if u.User != nil {
		return permanent(fmt.Sprintf("refused %s: credentials in URL not allowed", redact(u)), nil)
	}
	host := u.Hostname()
	if host == "" {
		return permanent(fmt.Sprintf("refused %s: no host", redact(u)), nil)
	}
	if !c.hostAllowed(host) {
		return permanent(fmt.Sprintf("refused %s: host %q is not on the allow-list", redact(u), host), nil)
	}
	return nil
}

// redact renders u for messages without userinfo or query (signed URLs
// carry tokens in the query).
func redact(u *url.URL) string {
	r := *u
	r.User = nil
	if r.RawQuery != "" {
		r.RawQuery = "…"
	}
	r.Fragment = ""
	return r.String()
}
