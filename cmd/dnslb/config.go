package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/viper"
)

// keyDelimiter replaces viper's default ".": pool names ("www.example.test.")
// and member addresses ("192.0.2.10", "2001:db8::10") are map keys that contain
// dots and colons, and must not be split into nested keys.
const keyDelimiter = "|"

// readConfig reads a YAML file (or, when file is empty, the given default
// bytes) plus DNSLB_* environment overrides into out, rejecting unknown keys.
// defaults lists the leaf keys (with keyDelimiter) that may be set from the
// environment even when the file does not mention them.
//
// This is the only place viper is used: it runs once per (re)load, and the
// typed struct is what the rest of the program sees.
func readConfig(file string, fallback []byte, defaults map[string]any, out any) error {
	v := viper.NewWithOptions(viper.KeyDelimiter(keyDelimiter))
	v.SetConfigType("yaml")
	v.SetEnvPrefix("DNSLB")
	v.SetEnvKeyReplacer(strings.NewReplacer(keyDelimiter, "_", "-", "_"))
	v.AutomaticEnv()
	for k, val := range defaults {
		v.SetDefault(k, val)
	}
	var data []byte
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		data = b
	} else {
		data = fallback
	}
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return fmt.Errorf("%s: %w", displayName(file), err)
	}
	if err := v.UnmarshalExact(out); err != nil {
		return fmt.Errorf("%s: %w", displayName(file), err)
	}
	return nil
}

func displayName(file string) string {
	if file == "" {
		return "(embedded example)"
	}
	return file
}
