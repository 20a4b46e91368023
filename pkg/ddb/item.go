package ddb

import (
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Item is a DynamoDB item; the helpers below keep the adapters' converters short and explicit.
type Item = map[string]types.AttributeValue

// S is a string attribute.
func S(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// N is a number attribute.
func N(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// B is a binary attribute.
func B(v []byte) types.AttributeValue { return &types.AttributeValueMemberB{Value: v} }

// SS is a string set attribute; DynamoDB refuses empty sets, so callers must not pass one.
func SS(v []string) types.AttributeValue { return &types.AttributeValueMemberSS{Value: v} }

// GetS reads a string attribute, "" when absent.
func GetS(it Item, name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// GetN reads a number attribute, 0 when absent or not an integer.
func GetN(it Item, name string) int64 {
	if v, ok := it[name].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

// GetB reads a binary attribute.
func GetB(it Item, name string) []byte {
	if v, ok := it[name].(*types.AttributeValueMemberB); ok {
		return v.Value
	}
	return nil
}

// GetSS reads a string set attribute.
func GetSS(it Item, name string) []string {
	if v, ok := it[name].(*types.AttributeValueMemberSS); ok {
		return v.Value
	}
	return nil
}
