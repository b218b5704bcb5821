// Launch rewriter of the emulated CUDA target: copies a .cu file with two rewrites, so that
// g++ can compile it with tests/cuda-emu/emu_device.h force-included:
//   k<<<grid, block, smem, stream>>>(args)  ->  ::cuda_emu::Launch("k", FILE, LINE, grid, block,
//                                               smem, stream)(k, args)
//   __shared__ T name[N];                   ->  static T name[N]; ::cuda_emu::shared_seen(...);
// Neither adds or removes a newline, and the output starts with a #line naming the source, so
// every diagnostic points at the .cu line. Comments and literals are copied untouched.
// Usage: cuda-emu-rewrite IN.cu OUT.cpp
#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace {

[[noreturn]] void fail(const std::string& file, const std::string& text, size_t at,
                       const std::string& why) {
  int line = 1;
  for (size_t i = 0; i < at && i < text.size(); ++i) line += text[i] == '\n';
  std::fprintf(stderr, "%s:%d: cuda-emu-rewrite: %s\n", file.c_str(), line, why.c_str());
  std::exit(1);
}

bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Where the comment or literal starting at i ends (i itself if none starts there).
size_t skip_opaque(const std::string& s, size_t i) {
  if (s.compare(i, 2, "//") == 0) {
    const size_t e = s.find('\n', i);
    return e == std::string::npos ? s.size() : e;
  }
  if (s.compare(i, 2, "/*") == 0) {
    const size_t e = s.find("*/", i + 2);
    return e == std::string::npos ? s.size() : e + 2;
  }
  if (s[i] == '"' || s[i] == '\'') {
    size_t j = i + 1;
    while (j < s.size() && s[j] != s[i]) j += s[j] == '\\' ? 2 : 1;
    return j + 1;
  }
  return i;
}

// The start of the kernel expression that ends just before `end` (an identifier, possibly
// qualified with ::, possibly with template arguments: `ns::k<256>`).
size_t kernel_start(const std::string& s, size_t end) {
  size_t i = end;
  while (i > 0 && std::isspace(static_cast<unsigned char>(s[i - 1]))) --i;
  for (;;) {
    if (i > 0 && s[i - 1] == '>') {  // template arguments: match back to their '<'
      int depth = 0;
      do {
        --i;
        if (s[i] == '>') ++depth;
        if (s[i] == '<') --depth;
      } while (i > 0 && depth > 0);
    }
    while (i > 0 && ident_char(s[i - 1])) --i;
    if (i >= 2 && s.compare(i - 2, 2, "::") == 0)
      i -= 2;
    else
      return i;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: cuda-emu-rewrite IN.cu OUT.cpp\n");
    return 2;
  }
  const std::string in = argv[1];
  std::ifstream f(in, std::ios::binary);
  if (!f) fail(in, "", 0, "cannot read the file");
  std::ostringstream ss;
  ss << f.rdbuf();
  const std::string s = ss.str();

  std::string out = "#line 1 \"" + in + "\"\n";
  size_t copied = 0;  // s[0, copied) is already in `out`
  for (size_t i = 0; i < s.size();) {
    const size_t o = skip_opaque(s, i);
    if (o != i) {
      i = o;
      continue;
    }
    if (s.compare(i, 3, "<<<") == 0) {
      const size_t k0 = kernel_start(s, i);
      if (k0 < copied) fail(in, s, i, "launch without a kernel name");
      std::string kernel = s.substr(k0, i - k0);
      while (!kernel.empty() && std::isspace(static_cast<unsigned char>(kernel.back())))
        kernel.pop_back();
      if (kernel.empty()) fail(in, s, i, "launch without a kernel name");
      const size_t close = s.find(">>>", i + 3);
      if (close == std::string::npos) fail(in, s, i, "<<< without >>>");
      size_t a = close + 3;
      while (a < s.size() && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
      if (a >= s.size() || s[a] != '(') fail(in, s, close, "expected the kernel's arguments");
      size_t b = a + 1;
      while (b < s.size() && s[b] == ' ') ++b;
      const bool no_args = b < s.size() && s[b] == ')';
      out.append(s, copied, k0 - copied);
      out += "::cuda_emu::Launch(\"" + kernel + "\", __FILE__, __LINE__, ";
      out.append(s, i + 3, close - (i + 3));  // the launch configuration, newlines and all
      out += ")(" + kernel + (no_args ? "" : ", ");
      copied = i = a + 1;
      continue;
    }
    if (s.compare(i, 10, "__shared__") == 0 && (i == 0 || !ident_char(s[i - 1])) &&
        !ident_char(s[i + 10])) {
      const size_t semi = s.find(';', i);
      if (semi == std::string::npos) fail(in, s, i, "__shared__ without ';'");
      const std::string decl = s.substr(i + 10, semi - (i + 10));
      if (decl.find("extern") != std::string::npos || decl.find('=') != std::string::npos)
        fail(in, s, i, "dynamic or initialised __shared__ is not emulated");
      size_t e = decl.size();  // the declared name: the identifier before any [dims]
      while (e > 0 &&
             (std::isspace(static_cast<unsigned char>(decl[e - 1])) || decl[e - 1] == ']')) {
        if (decl[e - 1] == ']')
          e = decl.rfind('[', e - 1);
        else
          --e;
        if (e == std::string::npos) fail(in, s, i, "unbalanced [] in a __shared__ declaration");
      }
      size_t n0 = e;
      while (n0 > 0 && ident_char(decl[n0 - 1])) --n0;
      const std::string name = decl.substr(n0, e - n0);
      if (name.empty()) fail(in, s, i, "cannot find the name of a __shared__ variable");
      out.append(s, copied, i - copied);
      out += "static" + decl + "; ::cuda_emu::shared_seen(&" + name + ", sizeof " + name + ")";
      copied = i = semi;
      continue;
    }
    ++i;
  }
  out.append(s, copied, std::string::npos);
  std::ofstream o(argv[2], std::ios::binary);
  o << out;
  if (!o) fail(argv[2], "", 0, "cannot write the file");
  return 0;
}
