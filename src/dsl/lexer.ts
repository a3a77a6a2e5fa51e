// Tokens of the model language. Statements need no separators: every statement
// starts with a keyword or a name followed by `=` or `,`, so newlines are plain
// whitespace. "Soft" keywords (weight, param, input, ...) are also names, so a
// weight can be called `weight` or `bias`, as the GPT-2 checkpoint requires.
import { createToken, Lexer, type TokenType } from "chevrotain";

export const Identifier = createToken({
  name: "Identifier",
  pattern: /[A-Za-z_][A-Za-z0-9_]*/,
  label: "a name",
});

function keyword(word: string, soft: boolean): TokenType {
  return createToken({
    name: word[0].toUpperCase() + word.slice(1),
    pattern: new RegExp(`${word}\\b`),
    longer_alt: Identifier,
    categories: soft ? [Identifier] : [],
    label: `'${word}'`,
  });
}

// Hard keywords can never be names.
export const Import = keyword("import", false);
export const Fn = keyword("fn", false);
export const Repeat = keyword("repeat", false);
export const In = keyword("in", false);
export const As = keyword("as", false);
export const Return = keyword("return", false);
export const If = keyword("if", false);
export const Else = keyword("else", false);
export const True = keyword("true", false);
export const False = keyword("false", false);
// Soft keywords: special only where a statement starts (or a type names its dtype).
export const Model = keyword("model", true);
export const Param = keyword("param", true);
export const From = keyword("from", true);
export const Weight = keyword("weight", true);
export const Input = keyword("input", true);
export const Output = keyword("output", true);
export const Loss = keyword("loss", true);
export const Preset = keyword("preset", true);
export const FloatType = keyword("float", true);
export const IntType = keyword("int", true);
export const BoolType = keyword("bool", true);

export const NumberLiteral = createToken({
  name: "NumberLiteral",
  pattern: /(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/,
  label: "a number",
});
export const StringLiteral = createToken({
  name: "StringLiteral",
  pattern: /"(?:[^"\\\r\n\u2028\u2029]|\\.)*"/,
  label: "a string",
});

const punct = (name: string, pattern: RegExp | string, label: string) =>
  createToken({ name, pattern, label: `'${label}'` });

export const Ellipsis = punct("Ellipsis", "...", "...");
export const Dot = punct("Dot", ".", ".");
export const Comma = punct("Comma", ",", ",");
export const Colon = punct("Colon", ":", ":");
export const LParen = punct("LParen", "(", "(");
export const RParen = punct("RParen", ")", ")");
export const LBracket = punct("LBracket", "[", "[");
export const RBracket = punct("RBracket", "]", "]");
export const LBrace = punct("LBrace", "{", "{");
export const RBrace = punct("RBrace", "}", "}");
export const StarStar = punct("StarStar", "**", "**");
export const Star = punct("Star", "*", "*");
export const Slash = punct("Slash", "/", "/");
export const Plus = punct("Plus", "+", "+");
export const Minus = punct("Minus", "-", "-");
export const At = punct("At", "@", "@");
export const LessEq = punct("LessEq", "<=", "<=");
export const GreaterEq = punct("GreaterEq", ">=", ">=");
export const EqEq = punct("EqEq", "==", "==");
export const NotEq = punct("NotEq", "!=", "!=");
export const Less = punct("Less", "<", "<");
export const Greater = punct("Greater", ">", ">");
export const Equals = punct("Equals", "=", "=");

export const LineComment = createToken({
  name: "LineComment",
  pattern: /\/\/[^\n\r]*/,
  group: "comments",
});
export const BlockComment = createToken({
  name: "BlockComment",
  pattern: /\/\*[^]*?\*\//,
  group: "comments",
  line_breaks: true,
});
export const WhiteSpace = createToken({
  name: "WhiteSpace",
  pattern: /\s+/,
  group: Lexer.SKIPPED,
  line_breaks: true,
});

export const allTokens: TokenType[] = [
  WhiteSpace,
  LineComment,
  BlockComment,
  // Keywords before Identifier (longer_alt keeps `inputs` a name).
  Import,
  Fn,
  Repeat,
  In,
  As,
  Return,
  If,
  Else,
  True,
  False,
  Model,
  Param,
  From,
  Weight,
  Input,
  Output,
  Loss,
  Preset,
  FloatType,
  IntType,
  BoolType,
  Identifier,
  NumberLiteral,
  StringLiteral,
  Ellipsis,
  Dot,
  Comma,
  Colon,
  LParen,
  RParen,
  LBracket,
  RBracket,
  LBrace,
  RBrace,
  StarStar,
  Star,
  Slash,
  Plus,
  Minus,
  At,
  LessEq,
  GreaterEq,
  EqEq,
  NotEq,
  Less,
  Greater,
  Equals,
];

export const modelLexer = new Lexer(allTokens, {
  positionTracking: "full",
  ensureOptimizations: false,
});
