package main

import (
	"bytes"
	"encoding"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dnslb/dnslb/dnslb"
	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// keyDelimiter replaces viper's default ".": pool names ("www.example.test.")
// and member addresses ("192.0.2.10", "2001:db8::10") are map keys that contain
// dots and colons, and must not be split into nested keys.
const keyDelimiter = "|"

// readConfig reads a YAML file (or, when file is empty, the given
// fallback bytes) into out, rejecting unknown keys, then applies the
// DNSLB_* environment overrides of out's leaf keys (see applyEnv). It
// returns the bytes read, to place later problems in, and its own problems
// as dnslb.Problems.
//
// This is the only place viper is used: it runs once per (re)load, and the
// typed struct is what the rest of the program sees.
func readConfig(file string, fallback []byte, out any) ([]byte, error) {
	name := displayName(file)
	data := fallback
	if file != "" {
		b, err := readRegularFile(file)
		if err != nil {
			return nil, dnslb.Problems{{File: name, Msg: err.Error()}}
		}
		data = b
	}
	// No viper.AutomaticEnv: it lets DNSLB_ADMIN (the admin client's
	// address) replace the whole admin: block, token included. applyEnv sets
	// leaf keys only.
	v := viper.NewWithOptions(viper.KeyDelimiter(keyDelimiter))
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, dnslb.Problems{{File: name, Line: line, Msg: m[2]}}
		}
		return nil, dnslb.Problems{{File: name, Msg: err.Error()}}
	}
	if err := v.UnmarshalExact(out, viper.DecodeHook(decodeHooks())); err != nil {
		return nil, explainDecodeError(name, data, err)
	}
	if err := applyEnv(os.LookupEnv, out); err != nil {
		return nil, dnslb.ProblemsOf(err)
	}
	return data, nil
}

// readRegularFile reads a config file, refusing what is not a regular
// file: reading a FIFO would block the load until something wrote to it.
func readRegularFile(file string) ([]byte, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", file, fi.Mode().Type())
	}
	return os.ReadFile(file)
}

// decodeHooks turns the strings and numbers of YAML and of the environment
// into the config's types.
func decodeHooks() mapstructure.DecodeHookFunc {
	return mapstructure.ComposeDecodeHookFunc(
		boolTextHook,
		mapstructure.TextUnmarshallerHookFunc(), // e.g. admin: "host:port" as well as {listen, token}
		durationHook,
		mapstructure.StringToSliceHookFunc(","),
	)
}

// boolTextHook hands a YAML boolean to a type decoded from text as the
// text "true" or "false": rrl: false means what rrl: off does.
func boolTextHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.Bool || to.Kind() == reflect.Bool ||
		!reflect.PointerTo(to).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return data, nil
	}
	return strconv.FormatBool(reflect.ValueOf(data).Bool()), nil
}

// durationHook decodes a time.Duration from a string with a unit ("2s",
// "500ms"). A number is refused: YAML's `interval: 2` would otherwise be
// 2ns. Zero needs no unit (time.ParseDuration agrees), so 0 is accepted.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if d := reflect.TypeFor[time.Duration](); to != d || from == d {
		return data, nil
	}
	switch from.Kind() {
	case reflect.String:
		s := reflect.ValueOf(data).String()
		d, err := time.ParseDuration(s)
		if err == nil {
			return d, nil
		}
		if _, nerr := strconv.ParseFloat(strings.TrimSpace(s), 64); nerr == nil {
			return nil, fmt.Errorf("%q has no unit (write e.g. 2s or 500ms)", s)
		}
		return nil, fmt.Errorf("%q is not a duration (write e.g. 2s or 500ms)", s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if reflect.ValueOf(data).IsZero() {
			return time.Duration(0), nil
		}
		return nil, fmt.Errorf("%v has no unit (write e.g. 2s or 500ms)", data)
	}
	return data, nil
}

var (
	yamlLineRE    = regexp.MustCompile(`yaml: line (\d+): (.*)`)
	invalidKeysRE = regexp.MustCompile(`^'([^']*)' has invalid keys: (.*)$`)
	keyProblemRE  = regexp.MustCompile(`^'([^']*)' (.*)$`)
)

// explainDecodeError turns mapstructure's summary into one problem per
// line of it, each with its key path and the line found in the YAML.
func explainDecodeError(file string, data []byte, err error) dnslb.Problems {
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root) // it parsed once already; on failure lines are 0
	at := func(path, msg string) dnslb.Problem {
		return dnslb.Problem{File: file, Line: yamlLine(&root, keyPath(path)), Key: path, Msg: msg}
	}
	var out dnslb.Problems
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "* ")
		if line == "" || strings.HasPrefix(line, "decoding failed") {
			continue
		}
		if m := invalidKeysRE.FindStringSubmatch(line); m != nil {
			for _, k := range strings.Split(m[2], ", ") {
				full := k
				if m[1] != "" {
					full = m[1] + "." + k
				}
				out = append(out, at(full, "unknown key"))
			}
			continue
		}
		if m := keyProblemRE.FindStringSubmatch(line); m != nil {
			out = append(out, at(m[1], m[2]))
			continue
		}
		out = append(out, dnslb.Problem{File: file, Msg: line})
	}
	if len(out) == 0 {
		out = dnslb.Problems{{File: file, Msg: err.Error()}}
	}
	return out
}

// keyPath splits mapstructure's "pools[www.example.test.].check" into
// "pools", "www.example.test.", "check".
func keyPath(p string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '.':
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		case '[':
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				end = len(p) - i
			}
			out = append(out, p[i+1:i+end])
			i += end
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// yamlLine finds the line of the key (or sequence item) a path names; 0 if
// it is not there. Keys compare case-insensitively, as viper folds case.
func yamlLine(n *yaml.Node, path []string) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, seg := range path {
		switch n.Kind {
		case yaml.MappingNode:
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if strings.EqualFold(n.Content[i].Value, seg) {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
			if !found {
				return line
			}
		case yaml.SequenceNode:
			idx, err := strconv.Atoi(seg)
			if err != nil || idx < 0 || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		default:
			return line
		}
	}
	return line
}

func displayName(file string) string {
	if file == "" {
		return "(embedded example)"
	}
	return file
}
