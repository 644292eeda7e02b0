package dnslb

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// jsonLoadReport returns the agent-protocol line that field path of the
// JSON document b carries: a string as it is ("50%", "drain"), a number
// as N% (rounded; 0-1000). Anything else, or no such field, is an error.
func jsonLoadReport(b []byte, path string) (string, error) {
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("the check's response body is not JSON: %w", err)
	}
	v := doc
	for k := range strings.SplitSeq(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", fmt.Errorf("no field %s in the check's JSON body: %q is not in an object", path, k)
		}
		if v, ok = obj[k]; !ok {
			return "", fmt.Errorf("no field %s in the check's JSON body", path)
		}
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case float64:
		if v < 0 || v > 1000 {
			return "", fmt.Errorf("field %s of the check's JSON body: %v is not a load percentage (0-1000)", path, v)
		}
		return strconv.Itoa(int(math.Round(v))) + "%", nil
	default:
		return "", fmt.Errorf("field %s of the check's JSON body is %T, not a string or a number", path, v)
	}
}
