package dnssec

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// maxKeyFile bounds what is read of a key file: real ones are a few
// hundred bytes, and a huge file must not cost memory or parse time.
const maxKeyFile = 64 << 10

// timeFormat is BIND's timing format (always UTC).
const timeFormat = "20060102150405"

// removedDir is where Apply moves deleted keys: a key file is the only
// copy of a private key, so it is kept for the operator to dispose of.
const removedDir = "removed"

// Generate makes a new key for zone in dir, published and active at now
// like dnssec-keygen does by default. Use Plan and Apply for keys that
// must be pre-published.
func Generate(dir, zone string, alg Algorithm, role Role, now time.Time) (*Key, error) {
	now = now.UTC().Truncate(time.Second)
	return generate(dir, zone, alg, role, now, Timing{Publish: now, Activate: now})
}

// generate writes the key with its final timing in one step: writing the
// timing afterwards would leave, after a crash, a successor key that
// signs at once, before resolvers have its DNSKEY.
func generate(dir, zone string, alg Algorithm, role Role, now time.Time, t Timing) (*Key, error) {
	z, err := canonicalZone(zone)
	if err != nil {
		return nil, err
	}
	if !alg.valid() {
		return nil, fmt.Errorf("dnssec: generate key for %s: unsupported algorithm %d", z, alg)
	}
	if role != ZSK && role != KSK {
		return nil, fmt.Errorf("dnssec: generate key for %s: invalid role %d", z, role)
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	// A new key whose tag collides with an existing one of the zone is
	// thrown away: validators pick keys by (algorithm, tag), and the file
	// names would clash.
	for range 16 {
		k, err := newKey(z, alg, role)
		if err != nil {
			return nil, err
		}
		k.Created = now.UTC().Truncate(time.Second)
		k = k.withTiming(truncTiming(t))
		base := filepath.Join(dir, baseName(z, alg, k.Tag))
		k.Path = base + ".key"
		err = writeNewKey(dir, k)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return k, nil
	}
	return nil, fmt.Errorf("dnssec: generate key for %s: key tags keep colliding in %s", z, dir)
}

func truncTiming(t Timing) Timing {
	tr := func(x time.Time) time.Time {
		if x.IsZero() {
			return x
		}
		return x.UTC().Truncate(time.Second)
	}
	return Timing{tr(t.Publish), tr(t.Activate), tr(t.Inactive), tr(t.Delete)}
}

func newKey(zone string, alg Algorithm, role Role) (*Key, error) {
	dk := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET},
		Flags:     role.flags(),
		Protocol:  3,
		Algorithm: uint8(alg),
	}
	var signer crypto.Signer
	switch alg {
	case ECDSAP256SHA256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("dnssec: generate ECDSA key: %w", err)
		}
		pub, err := priv.PublicKey.Bytes()
		if err != nil {
			return nil, fmt.Errorf("dnssec: generate ECDSA key: %w", err)
		}
		dk.PublicKey = base64.StdEncoding.EncodeToString(pub[1:]) // X||Y without the 0x04 prefix
		signer = priv
	case ED25519:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("dnssec: generate Ed25519 key: %w", err)
		}
		dk.PublicKey = base64.StdEncoding.EncodeToString(pub)
		signer = priv
	}
	return &Key{Zone: zone, Role: role, Algorithm: alg, DNSKEY: dk, Tag: dk.KeyTag(), signer: signer}, nil
}

// baseName is BIND's file name without suffix; BIND keeps the final dot
// of the zone ("Kexample.com.+013+01234"), the root zone is "K.".
func baseName(zone string, alg Algorithm, tag uint16) string {
	return fmt.Sprintf("K%s+%03d+%05d", zone, uint8(alg), tag)
}

func privatePath(keyPath string) string {
	return strings.TrimSuffix(keyPath, ".key") + ".private"
}

// writeNewKey writes both files under temporary names and links them to
// their final names, which fails instead of overwriting an existing key.
// The .private file goes first: LoadKeys ignores a .private alone but
// refuses a .key alone, so a crash in between leaves a loadable directory.
func writeNewKey(dir string, k *Key) error {
	priv, err := privateFileContent(k, nil)
	if err != nil {
		return err
	}
	privPath := privatePath(k.Path)
	tmpPriv, err := writeTemp(dir, priv, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmpPriv)
	tmpKey, err := writeTemp(dir, keyFileContent(k), 0o644)
	if err != nil {
		return err
	}
	defer os.Remove(tmpKey)
	if err := os.Link(tmpPriv, privPath); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("dnssec: create %s: %w", privPath, err)
	}
	if err := os.Link(tmpKey, k.Path); err != nil {
		_ = os.Remove(privPath)
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("dnssec: create %s: %w", k.Path, err)
	}
	return syncDir(dir)
}

// writeTemp writes data to a new file in dir (created with O_EXCL by
// os.CreateTemp) and flushes it to disk before it gets its final name.
func writeTemp(dir string, data []byte, mode os.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, ".tmp-K*")
	if err != nil {
		return "", fmt.Errorf("dnssec: create temporary key file: %w", err)
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", fmt.Errorf("dnssec: write %s: %w", name, err)
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("dnssec: write %s: %w", name, err)
	}
	return name, nil
}

// replaceFile atomically replaces path with data.
func replaceFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, data, mode)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("dnssec: replace %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("dnssec: sync key directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("dnssec: sync key directory %s: %w", dir, err)
	}
	return nil
}

// checkDir refuses a key directory others can write to: they could
// replace a key, or swap in their own.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("dnssec: key directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("dnssec: key directory %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("dnssec: key directory %s is writable by others (mode %v)", dir, fi.Mode().Perm())
	}
	return nil
}

var timingNames = [...]string{"Publish", "Activate", "Inactive", "Delete"}

func timingFields(k *Key) [4]time.Time {
	return [4]time.Time{k.Publish, k.Activate, k.Inactive, k.Delete}
}

// keyFileContent is the .key file: BIND's comment lines (for humans;
// timing is read from the .private file) and the DNSKEY record.
func keyFileContent(k *Key) []byte {
	var b bytes.Buffer
	kind := "zone-signing"
	if k.Role == KSK {
		kind = "key-signing"
	}
	fmt.Fprintf(&b, "; This is a %s key, keyid %d, for %s\n", kind, k.Tag, k.Zone)
	if !k.Created.IsZero() {
		fmt.Fprintf(&b, "; Created: %s (%s)\n", k.Created.UTC().Format(timeFormat), k.Created.UTC().Format(time.ANSIC))
	}
	for i, t := range timingFields(k) {
		if !t.IsZero() {
			fmt.Fprintf(&b, "; %s: %s (%s)\n", timingNames[i], t.UTC().Format(timeFormat), t.UTC().Format(time.ANSIC))
		}
	}
	fmt.Fprintf(&b, "%s IN DNSKEY %d %d %d %s\n", k.Zone, k.DNSKEY.Flags, k.DNSKEY.Protocol, k.DNSKEY.Algorithm, k.DNSKEY.PublicKey)
	return b.Bytes()
}

// privateFileContent is the .private file. With old (an existing file),
// every line but the four timing lines we manage is kept, so that BIND's
// own metadata survives in imported keys.
func privateFileContent(k *Key, old []byte) ([]byte, error) {
	var b bytes.Buffer
	if old == nil {
		material, err := privateMaterial(k)
		if err != nil {
			return nil, err
		}
		b.WriteString("Private-key-format: v1.3\n")
		fmt.Fprintf(&b, "Algorithm: %d (%s)\n", uint8(k.Algorithm), k.Algorithm)
		fmt.Fprintf(&b, "PrivateKey: %s\n", material)
		if !k.Created.IsZero() {
			fmt.Fprintf(&b, "Created: %s\n", k.Created.UTC().Format(timeFormat))
		}
	} else {
		for line := range strings.Lines(string(old)) {
			name, _, _ := strings.Cut(line, ":")
			if isTimingName(strings.TrimSpace(name)) {
				continue
			}
			b.WriteString(line)
			if !strings.HasSuffix(line, "\n") {
				b.WriteByte('\n')
			}
		}
	}
	for i, t := range timingFields(k) {
		if !t.IsZero() {
			fmt.Fprintf(&b, "%s: %s\n", timingNames[i], t.UTC().Format(timeFormat))
		}
	}
	return b.Bytes(), nil
}

func isTimingName(s string) bool {
	for _, n := range timingNames {
		if strings.EqualFold(s, n) {
			return true
		}
	}
	return false
}

func privateMaterial(k *Key) (string, error) {
	switch p := k.signer.(type) {
	case *ecdsa.PrivateKey:
		raw, err := p.Bytes()
		if err != nil {
			return "", fmt.Errorf("dnssec: key %s: %w", k, err)
		}
		return base64.StdEncoding.EncodeToString(raw), nil
	case ed25519.PrivateKey:
		return base64.StdEncoding.EncodeToString(p.Seed()), nil
	}
	return "", fmt.Errorf("dnssec: key %s: no private key of a supported type", k)
}

// SaveTiming rewrites the timing lines of k's files, atomically, after a
// rollover decision. The .private file is checked to still hold k's
// private key, so a file replaced behind our back is not silently
// rewritten with the wrong timing.
func SaveTiming(k *Key) error {
	if k == nil || k.DNSKEY == nil || k.Path == "" {
		return fmt.Errorf("dnssec: save timing: key without files")
	}
	privPath := privatePath(k.Path)
	old, err := readKeyFile(privPath, true)
	if err != nil {
		return err
	}
	if _, err := parsePrivate(privPath, old, k.DNSKEY); err != nil {
		return err
	}
	data, err := privateFileContent(k, old)
	if err != nil {
		return err
	}
	if err := replaceFile(privPath, data, 0o600); err != nil {
		return err
	}
	return replaceFile(k.Path, keyFileContent(k), 0o644)
}

// readKeyFile reads a bounded key file; private files must be readable
// and writable by their owner only, as BIND makes them.
func readKeyFile(path string, private bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dnssec: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("dnssec: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("dnssec: %s is not a regular file", path)
	}
	if private && fi.Mode().Perm()&0o066 != 0 {
		return nil, fmt.Errorf("dnssec: %s is accessible by group or others (mode %v; want 0600)", path, fi.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("dnssec: read %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("dnssec: %s is larger than %d bytes", path, maxKeyFile)
	}
	return data, nil
}

// LoadKeys reads every key of zone in dir, ours and BIND's alike. It
// refuses rather than skips anything doubtful (loose permissions, a .key
// without its .private, a pair that does not match, an algorithm we
// cannot sign with): a key silently left out could be the one the
// parent's DS points to.
func LoadKeys(dir, zone string) ([]*Key, error) {
	z, err := canonicalZone(zone)
	if err != nil {
		return nil, err
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("dnssec: key directory: %w", err)
	}
	var keys []*Key
	for _, e := range entries {
		name := e.Name()
		fz, alg, tag, ok := parseBaseName(strings.TrimSuffix(name, ".key"))
		if !ok || !strings.HasSuffix(name, ".key") || dns.CanonicalName(fz) != z {
			continue
		}
		k, err := loadKey(filepath.Join(dir, name), z, alg, tag)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// parseBaseName splits "K<zone>+<alg>+<tag>".
func parseBaseName(s string) (zone string, alg uint8, tag uint16, ok bool) {
	if !strings.HasPrefix(s, "K") {
		return "", 0, 0, false
	}
	i := strings.LastIndexByte(s, '+')
	if i < 0 || len(s)-i-1 != 5 {
		return "", 0, 0, false
	}
	t, err := strconv.ParseUint(s[i+1:], 10, 16)
	if err != nil {
		return "", 0, 0, false
	}
	j := strings.LastIndexByte(s[:i], '+')
	if j < 1 || i-j-1 != 3 {
		return "", 0, 0, false
	}
	a, err := strconv.ParseUint(s[j+1:i], 10, 8)
	if err != nil {
		return "", 0, 0, false
	}
	return s[1:j], uint8(a), uint16(t), true
}

func loadKey(path, zone string, alg uint8, tag uint16) (*Key, error) {
	keyData, err := readKeyFile(path, false)
	if err != nil {
		return nil, err
	}
	privPath := privatePath(path)
	privData, err := readKeyFile(privPath, true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("dnssec: %s has no private key file %s", path, privPath)
	}
	if err != nil {
		return nil, err
	}
	return parseKeyPair(path, keyData, privPath, privData, zone, alg, tag)
}

// parseKeyPair builds a key from the contents of its two files; it is
// what the fuzz target exercises.
func parseKeyPair(path string, keyData []byte, privPath string, privData []byte, zone string, alg uint8, tag uint16) (*Key, error) {
	dk, err := parseDNSKEY(path, keyData, zone)
	if err != nil {
		return nil, err
	}
	if dk.Algorithm != alg {
		return nil, fmt.Errorf("dnssec: %s: DNSKEY algorithm %d does not match the file name", path, dk.Algorithm)
	}
	if got := dk.KeyTag(); got != tag {
		return nil, fmt.Errorf("dnssec: %s: DNSKEY key tag %d does not match the file name", path, got)
	}
	p, err := parsePrivate(privPath, privData, dk)
	if err != nil {
		return nil, err
	}
	role := ZSK
	if dk.Flags == flagsKSK {
		role = KSK
	}
	return &Key{
		Zone: zone, Role: role, Algorithm: Algorithm(dk.Algorithm), DNSKEY: dk, Tag: tag,
		Created: p.timing[0], Publish: p.timing[1], Activate: p.timing[2], Inactive: p.timing[3], Delete: p.timing[4],
		Path: path, signer: p.signer,
	}, nil
}

func parseDNSKEY(path string, data []byte, zone string) (*dns.DNSKEY, error) {
	zp := dns.NewZoneParser(bytes.NewReader(data), zone, path)
	var dk *dns.DNSKEY
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if dk != nil {
			return nil, fmt.Errorf("dnssec: %s: more than one record", path)
		}
		d, isKey := rr.(*dns.DNSKEY)
		if !isKey {
			return nil, fmt.Errorf("dnssec: %s: %s record, want DNSKEY", path, dns.TypeToString[rr.Header().Rrtype])
		}
		dk = d
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("dnssec: %w", err)
	}
	if dk == nil {
		return nil, fmt.Errorf("dnssec: %s: no DNSKEY record", path)
	}
	if dns.CanonicalName(dk.Hdr.Name) != zone {
		return nil, fmt.Errorf("dnssec: %s: DNSKEY owner %s is not the zone %s", path, dk.Hdr.Name, zone)
	}
	if dk.Hdr.Class != dns.ClassINET {
		return nil, fmt.Errorf("dnssec: %s: DNSKEY class is not IN", path)
	}
	if dk.Protocol != 3 {
		return nil, fmt.Errorf("dnssec: %s: DNSKEY protocol %d, want 3", path, dk.Protocol)
	}
	if dk.Flags != flagsZSK && dk.Flags != flagsKSK {
		return nil, fmt.Errorf("dnssec: %s: DNSKEY flags %d, want 256 (ZSK) or 257 (KSK); revoked keys are not supported", path, dk.Flags)
	}
	if !Algorithm(dk.Algorithm).valid() {
		return nil, fmt.Errorf("dnssec: %s: unsupported algorithm %d (want 13 or 15)", path, dk.Algorithm)
	}
	pub, err := base64.StdEncoding.DecodeString(dk.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("dnssec: %s: DNSKEY public key: %w", path, err)
	}
	switch Algorithm(dk.Algorithm) {
	case ECDSAP256SHA256:
		if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, pub...)); err != nil {
			return nil, fmt.Errorf("dnssec: %s: DNSKEY public key: %w", path, err)
		}
	case ED25519:
		if len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("dnssec: %s: DNSKEY public key is %d bytes, want %d", path, len(pub), ed25519.PublicKeySize)
		}
	}
	dk.PublicKey = base64.StdEncoding.EncodeToString(pub) // normalised (the file may split it)
	dk.Hdr.Name = zone
	return dk, nil
}

type privateFile struct {
	signer crypto.Signer
	timing [5]time.Time // Created, Publish, Activate, Inactive, Delete
}

// parsePrivate reads a BIND .private file ("Name: value" lines) and
// checks that its private key is the one of dk.
func parsePrivate(path string, data []byte, dk *dns.DNSKEY) (*privateFile, error) {
	fields := map[string]string{}
	lines := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxKeyFile+1)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == ';' {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("dnssec: %s:%d: want \"Name: value\"", path, n)
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if _, dup := fields[name]; dup {
			return nil, fmt.Errorf("dnssec: %s:%d: %s given twice", path, n, name)
		}
		fields[name] = strings.TrimSpace(value)
		lines[name] = n
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dnssec: read %s: %w", path, err)
	}
	switch f := fields["private-key-format"]; f {
	case "v1.2", "v1.3":
	case "":
		return nil, fmt.Errorf("dnssec: %s: no Private-key-format line", path)
	default:
		return nil, fmt.Errorf("dnssec: %s:%d: unsupported Private-key-format %q", path, lines["private-key-format"], f)
	}
	algStr, _, _ := strings.Cut(fields["algorithm"], " ")
	alg, err := strconv.ParseUint(algStr, 10, 8)
	if err != nil {
		return nil, fmt.Errorf("dnssec: %s:%d: invalid Algorithm %q", path, lines["algorithm"], fields["algorithm"])
	}
	if uint8(alg) != dk.Algorithm {
		return nil, fmt.Errorf("dnssec: %s:%d: algorithm %d does not match the DNSKEY's %d", path, lines["algorithm"], alg, dk.Algorithm)
	}
	raw, err := base64.StdEncoding.DecodeString(fields["privatekey"])
	if err != nil || len(raw) == 0 {
		return nil, fmt.Errorf("dnssec: %s:%d: invalid or missing PrivateKey", path, lines["privatekey"])
	}
	var signer crypto.Signer
	var pub []byte
	switch Algorithm(alg) {
	case ECDSAP256SHA256:
		// BIND drops leading zero octets of the scalar.
		if len(raw) < 32 {
			raw = append(make([]byte, 32-len(raw)), raw...)
		}
		p, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
		if err != nil {
			return nil, fmt.Errorf("dnssec: %s:%d: PrivateKey: %w", path, lines["privatekey"], err)
		}
		b, err := p.PublicKey.Bytes()
		if err != nil {
			return nil, fmt.Errorf("dnssec: %s: %w", path, err)
		}
		signer, pub = p, b[1:]
	case ED25519:
		if len(raw) != ed25519.SeedSize {
			return nil, fmt.Errorf("dnssec: %s:%d: PrivateKey is %d bytes, want %d", path, lines["privatekey"], len(raw), ed25519.SeedSize)
		}
		p := ed25519.NewKeyFromSeed(raw)
		signer, pub = p, p.Public().(ed25519.PublicKey)
	default:
		return nil, fmt.Errorf("dnssec: %s:%d: unsupported algorithm %d", path, lines["algorithm"], alg)
	}
	if base64.StdEncoding.EncodeToString(pub) != dk.PublicKey {
		return nil, fmt.Errorf("dnssec: %s: private key does not match the public key of its .key file", path)
	}
	pf := &privateFile{signer: signer}
	for i, name := range [...]string{"created", "publish", "activate", "inactive", "delete"} {
		v, ok := fields[name]
		if !ok {
			continue
		}
		t, err := parseTime(v)
		if err != nil {
			return nil, fmt.Errorf("dnssec: %s:%d: %s: %w", path, lines[name], name, err)
		}
		pf.timing[i] = t
	}
	return pf, nil
}

// parseTime reads BIND's YYYYMMDDHHMMSS; BIND writes 0 for "unset" in
// some versions, which is taken as unset.
func parseTime(v string) (time.Time, error) {
	if v == "0" {
		return time.Time{}, nil
	}
	if len(v) != len(timeFormat) {
		return time.Time{}, fmt.Errorf("invalid time %q, want YYYYMMDDHHMMSS", v)
	}
	t, err := time.Parse(timeFormat, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time %q, want YYYYMMDDHHMMSS", v)
	}
	return t, nil
}

// removeKey moves a key's files to dir/removed/ instead of deleting
// them, keeping the files' names unless one is taken.
func removeKey(dir string, k *Key, now time.Time) error {
	rd := filepath.Join(dir, removedDir)
	if err := os.Mkdir(rd, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("dnssec: remove key %s: %w", k, err)
	}
	suffix := ""
	base := filepath.Base(k.Path)
	if _, err := os.Lstat(filepath.Join(rd, base)); err == nil {
		suffix = "." + now.UTC().Format(timeFormat)
	}
	// .key first: a .private left alone is ignored by LoadKeys.
	for _, p := range []string{k.Path, privatePath(k.Path)} {
		dst := filepath.Join(rd, filepath.Base(p)+suffix)
		if err := os.Rename(p, dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("dnssec: remove key %s: %w", k, err)
		}
	}
	return syncDir(dir)
}
