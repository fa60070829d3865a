// protoc-gen-katana-ttrpc: for every .proto with services, writes <name>.ttrpc.hpp with a
// service description, a typed client and a registration function over katana's ttrpc.
// The output is thin on purpose: it only names types and methods and calls library templates.
#include <array>
#include <cctype>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <google/protobuf/compiler/code_generator.h>
#include <google/protobuf/compiler/plugin.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/printer.h>
#include <google/protobuf/io/zero_copy_stream.h>

namespace {

namespace pb = google::protobuf;

constexpr std::string_view generator_version = "0.1.0";

// C++ keywords a snake_case RPC name can collide with (containerd's Task has "Delete").
constexpr std::array<std::string_view, 20> keywords = {
    "delete",   "new",      "default", "export", "import", "module",  "register",
    "switch",   "case",     "class",   "union",  "return", "private", "public",
    "operator", "template", "this",    "friend", "signed", "using"};

std::string snake_case(std::string_view name) {
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (std::isupper(c) != 0) {
      const bool prev_lower =
          i > 0 && (std::islower(static_cast<unsigned char>(name[i - 1])) != 0 ||
                    std::isdigit(static_cast<unsigned char>(name[i - 1])) != 0);
      const bool acronym_end =
          i > 0 && std::isupper(static_cast<unsigned char>(name[i - 1])) != 0 &&
          i + 1 < name.size() && std::islower(static_cast<unsigned char>(name[i + 1])) != 0;
      if (prev_lower || acronym_end) {
        out += '_';
      }
      out += static_cast<char>(std::tolower(c));
    } else {
      out += static_cast<char>(c);
    }
  }
  for (const auto k : keywords) {
    if (out == k) {
      out += '_';
    }
  }
  return out;
}

std::string cpp_namespace(std::string_view package) {
  std::string out;
  for (const char c : package) {
    if (c == '.') {
      out += "::";
    } else {
      out += c;
    }
  }
  return out;
}

// Fully qualified C++ class name protoc's C++ generator gives a message (nested: Outer_Inner).
std::string cpp_type(const pb::Descriptor* d) {
  std::string name = d->name();
  for (auto* outer = d->containing_type(); outer != nullptr; outer = outer->containing_type()) {
    name = outer->name() + "_" + name;
  }
  const auto ns = cpp_namespace(d->file()->package());
  return ns.empty() ? "::" + name : "::" + ns + "::" + name;
}

std::string qualified(std::string_view package, const std::string& name) {
  const auto ns = cpp_namespace(package);
  return ns.empty() ? "::" + name : "::" + ns + "::" + name;
}

std::string strip_proto(const std::string& file) {
  return file.size() > 6 && file.compare(file.size() - 6, 6, ".proto") == 0
             ? file.substr(0, file.size() - 6)
             : file;
}

void print_service(pb::io::Printer& p, const pb::ServiceDescriptor* svc) {
  const auto base = snake_case(svc->name());
  p.Print(
      "template <class Stream>\n"
      "class $base$_client;\n\n"
      "/// $full$\n"
      "struct $base$ {\n",
      "full", svc->full_name(), "base", base);
  p.Indent();
  p.Print("static constexpr std::string_view name = \"$full$\";\n", "full", svc->full_name());
  p.Print("template <class Stream>\nusing client_type = $base$_client<Stream>;\n", "base", base);
  p.Print("static constexpr ::katana::ttrpc::method_info methods[] = {\n");
  for (int m = 0; m < svc->method_count(); ++m) {
    const auto* md = svc->method(m);
    p.Print("    {\"$m$\", \"$in$\", \"$out$\"},\n", "m", md->name(), "in",
            md->input_type()->full_name(), "out", md->output_type()->full_name());
  }
  p.Print("};\n");
  p.Print(
      "\n/// Calls f(std::type_identity<Req>, std::type_identity<Resp>, name, call) for every "
      "unary\n"
      "/// method, where call(client, req, opts) invokes it through a $base$_client.\n"
      "template <class F>\n"
      "static void for_each_method(F&& f) {\n",
      "base", base);
  for (int m = 0; m < svc->method_count(); ++m) {
    const auto* md = svc->method(m);
    if (md->client_streaming() || md->server_streaming()) {
      continue;
    }
    p.Print(
        "  f(std::type_identity<$in$>{}, std::type_identity<$out$>{}, std::string_view(\"$m$\"),\n"
        "    [](auto& client, const $in$& req, ::katana::ttrpc::call_options opts) {\n"
        "      return client.$fn$(req, std::move(opts));\n"
        "    });\n",
        "in", cpp_type(md->input_type()), "out", cpp_type(md->output_type()), "m", md->name(), "fn",
        snake_case(md->name()));
  }
  p.Print("}\n");
  p.Outdent();
  p.Print("};\n\n");

  p.Print(
      "/// Typed client of $full$ over one ttrpc connection.\n"
      "template <class Stream>\n"
      "class $base$_client {\n"
      " public:\n"
      "  using service = $qbase$;\n"
      "  explicit $base$_client(::katana::ttrpc::basic_client<Stream> client)\n"
      "      : client_(std::move(client)) {}\n"
      "  ::katana::ttrpc::basic_client<Stream>& client() noexcept { return client_; }\n",
      "full", svc->full_name(), "base", base, "qbase", qualified(svc->file()->package(), base));
  for (int m = 0; m < svc->method_count(); ++m) {
    const auto* md = svc->method(m);
    std::map<std::string, std::string> v{{"full", svc->full_name()},
                                         {"base", base},
                                         {"m", md->name()},
                                         {"fn", snake_case(md->name())},
                                         {"in", cpp_type(md->input_type())},
                                         {"out", cpp_type(md->output_type())}};
    if (md->client_streaming() || md->server_streaming()) {
      p.Print(v, "  // $full$/$m$ is a streaming RPC: not generated (unary only).\n");
      continue;
    }
    p.Print(v,
            "\n  /// $full$/$m$\n"
            "  ::katana::task<::katana::result<$out$>> $fn$(\n"
            "      const $in$& req, ::katana::ttrpc::call_options opts = {}) {\n"
            "    return ::katana::ttrpc::unary_call<$out$>(client_, service::name, \"$m$\", req,\n"
            "                                              std::move(opts));\n"
            "  }\n");
  }
  p.Print(
      "\n private:\n"
      "  ::katana::ttrpc::basic_client<Stream> client_;\n"
      "};\n\n");

  p.Print(
      "/// Serves $full$ from `impl`: each method Impl has, as\n"
      "///   ::katana::task<::katana::result<Resp>> "
      "snake_case_name(::katana::ttrpc::server_context&,\n"
      "///                                                          const Req&)\n"
      "/// is registered; the others answer UNIMPLEMENTED.\n"
      "template <class Impl>\n"
      "void register_$base$(::katana::ttrpc::service_table& table, std::shared_ptr<Impl> impl) {\n",
      "full", svc->full_name(), "base", base);
  p.Indent();
  for (int m = 0; m < svc->method_count(); ++m) {
    const auto* md = svc->method(m);
    std::map<std::string, std::string> v{{"base", base},
                                         {"m", md->name()},
                                         {"fn", snake_case(md->name())},
                                         {"in", cpp_type(md->input_type())},
                                         {"out", cpp_type(md->output_type())}};
    if (md->client_streaming() || md->server_streaming()) {
      p.Print(v,
              "::katana::ttrpc::register_unsupported(\n"
              "    table, $base$::name, \"$m$\", \"is a streaming RPC: katana serves unary RPCs "
              "only\");\n");
      continue;
    }
    p.Print(v,
            "::katana::ttrpc::register_method<$in$, $out$>(\n"
            "    table, $base$::name, \"$m$\", impl,\n"
            "    [](auto& s, ::katana::ttrpc::server_context& ctx, const $in$& req)\n"
            "        -> decltype(s.$fn$(ctx, req)) { return s.$fn$(ctx, req); });\n");
  }
  p.Outdent();
  p.Print("}\n\n");
}

class generator final : public pb::compiler::CodeGenerator {
 public:
  bool Generate(const pb::FileDescriptor* file,
                const std::string& /*parameter*/,
                pb::compiler::GeneratorContext* ctx,
                std::string* /*error*/) const override {
    // Written for every file, services or not, so build systems know their outputs up front.
    const auto base = strip_proto(file->name());
    std::unique_ptr<pb::io::ZeroCopyOutputStream> out(ctx->Open(base + ".ttrpc.hpp"));
    pb::io::Printer p(out.get(), '$');
    p.Print(
        "// Code generated by protoc-gen-katana-ttrpc $v$. DO NOT EDIT.\n"
        "// source: $src$\n"
        "#pragma once\n\n"
        "#include <memory>\n"
        "#include <string_view>\n"
        "#include <type_traits>\n"
        "#include <utility>\n\n"
        "#include <katana/ttrpc/service.hpp>\n\n"
        "#include \"$base$.pb.h\"\n\n",
        "v", std::string(generator_version), "src", file->name(), "base", base);
    const auto ns = cpp_namespace(file->package());
    if (!ns.empty()) {
      p.Print("namespace $ns$ {\n\n", "ns", ns);
    }
    for (int s = 0; s < file->service_count(); ++s) {
      print_service(p, file->service(s));
    }
    if (!ns.empty()) {
      p.Print("}  // namespace $ns$\n", "ns", ns);
    }
    return !p.failed();
  }

  uint64_t GetSupportedFeatures() const override { return FEATURE_PROTO3_OPTIONAL; }
};

}  // namespace

int main(int argc, char* argv[]) {
  generator g;
  return pb::compiler::PluginMain(argc, argv, &g);
}
