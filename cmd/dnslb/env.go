package main

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// The admin client's variables (admincmd.go). Their names look like those
// of the keys admin and admin.token, but they choose the server the CLI
// talks to: they never change a server's or VIP agent's config.
const (
	envAdmin      = "DNSLB_ADMIN"
	envAdminToken = "DNSLB_ADMIN_TOKEN"
)

const envPrefix = "DNSLB_"

// envLeaf is a config key that the environment can set.
type envLeaf struct {
	name  string // DNSLB_TCP_IDLE_TIMEOUT
	key   string // tcp.idle_timeout, as in config problems
	index []int  // the field, for reflect.Value.FieldByIndex
}

// envLeaves lists the keys of the config struct t that the environment
// can set, as DNSLB_ and the key path in capitals joined by "_": fields of
// scalar types (strings, numbers, booleans, durations, pointers to them),
// slices of them and types decoded from text, found through nested
// structs. Only leaves: a variable named for a block (DNSLB_LOG, DNSLB_TCP)
// sets nothing, so no override can replace a block and drop a sibling key
// such as admin.token. Entries of maps and lists (pools, members, zones,
// vip instances) are not addressable: their keys are data, not names.
// Structs behind pointers are not either: setting one key would create the
// whole block. The admin client's variables are left out. Two keys whose
// names would be the same variable are an error (a bug in the config
// types, found by the tests).
func envLeaves(t reflect.Type) ([]envLeaf, error) {
	var leaves []envLeaf
	walkEnvLeaves(t, nil, nil, &leaves)
	byName := map[string]string{}
	out := leaves[:0]
	for _, l := range leaves {
		if other, dup := byName[l.name]; dup {
			return nil, fmt.Errorf("config: %s would set both %s and %s", l.name, other, l.key)
		}
		byName[l.name] = l.key
		if l.name == envAdmin || l.name == envAdminToken {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

func walkEnvLeaves(t reflect.Type, prefix []string, index []int, out *[]envLeaf) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if name == "-" {
			continue
		}
		idx := append(slices.Clone(index), i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct && slices.Contains(strings.Split(opts, ","), "squash") {
			walkEnvLeaves(f.Type, prefix, idx, out)
			continue
		}
		if name == "" {
			name = f.Name // as mapstructure, which matches it in any case
		}
		path := append(slices.Clone(prefix), name)
		switch ft := f.Type; {
		case ft.Kind() == reflect.Struct && hasExportedField(ft):
			walkEnvLeaves(ft, path, idx, out)
		case isScalar(ft), ft.Kind() == reflect.Slice && isScalar(ft.Elem()), reflect.PointerTo(ft).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()):
			key := strings.Join(path, ".")
			v := envPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(strings.Join(path, "_")))
			*out = append(*out, envLeaf{name: v, key: key, index: idx})
		}
	}
}

func isScalar(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func hasExportedField(t reflect.Type) bool {
	for i := range t.NumField() {
		if t.Field(i).IsExported() {
			return true
		}
	}
	return false
}

// applyEnv sets the leaf keys of the config struct out points to from the
// environment (lookup is os.LookupEnv), over what the file said. Values
// are text, decoded as the file's are (durations need a unit, lists are
// comma-separated); an empty variable is unset. Other DNSLB_* variables
// are ignored: exec checks get DNSLB_CHECK_ADDRESS, the admin client reads
// DNSLB_ADMIN. Nothing is logged: a value may be a secret.
func applyEnv(lookup func(string) (string, bool), out any) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: applyEnv needs a pointer to a struct, not %T", out)
	}
	leaves, err := envLeaves(rv.Elem().Type())
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range leaves {
		val, ok := lookup(l.name)
		if !ok || val == "" {
			continue
		}
		// Decoding into the field itself leaves every other key as the
		// file set it, whatever form the file used (admin: "host:port").
		dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			DecodeHook:       decodeHooks(),
			WeaklyTypedInput: true, // "1232" for an int, "true" for a bool
			ZeroFields:       true, // a list replaces the file's, not a prefix of it
			Result:           rv.Elem().FieldByIndex(l.index).Addr().Interface(),
		})
		if err != nil {
			return fmt.Errorf("config: %s: %w", l.key, err)
		}
		if err := dec.Decode(val); err != nil {
			var de *mapstructure.DecodeError
			if errors.As(err, &de) {
				err = de.Unwrap()
			}
			errs = append(errs, fmt.Errorf("environment %s: %s: %w", l.name, l.key, err))
		}
	}
	return errors.Join(errs...)
}
