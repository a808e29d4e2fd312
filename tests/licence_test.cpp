// SPDX-License-Identifier: MIT
// The licence travels with the code: LICENSE at the root is MIT, and every source file, script
// and build file names it with an SPDX line in its first lines (after a #! line, if any).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

fs::path source_root() { return fs::path(__FILE__).parent_path().parent_path(); }

bool wants_spdx(const fs::path& p) {
  static const std::vector<std::string> kExtensions = {".cpp", ".hpp", ".c", ".h", ".js", ".py", ".sh", ".cmake", ".in"};
  std::string name = p.filename().string();
  if (name == "CMakeLists.txt") return true;
  for (const std::string& e : kExtensions)
    if (p.extension() == e) return true;
  return false;
}

/// The first three lines carry "SPDX-License-Identifier: MIT".
bool has_spdx(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  for (int i = 0; i < 3 && std::getline(in, line); ++i)
    if (line.find("SPDX-License-Identifier: MIT") != std::string::npos) return true;
  return false;
}

TEST(Licence, TheRootHoldsTheMitLicence) {
  std::ifstream in(source_root() / "LICENSE");
  ASSERT_TRUE(in.good()) << "no LICENSE at the root";
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, "MIT License");
}

TEST(Licence, EverySourceFileCarriesAnSpdxLine) {
  std::vector<std::string> missing;
  for (const char* folder : {"include", "src", "tests", "examples", "bench", "fuzz", "tools", "cmake", "scripts"}) {
    fs::path dir = source_root() / folder;
    if (!fs::exists(dir)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
      if (entry.is_regular_file() && wants_spdx(entry.path()) && !has_spdx(entry.path()))
        missing.push_back(fs::relative(entry.path(), source_root()).string());
  }
  for (const char* file : {"CMakeLists.txt", ".ci/run"})
    if (!has_spdx(source_root() / file)) missing.push_back(file);
  std::string list;
  for (const std::string& m : missing) list += m + "\n";
  EXPECT_TRUE(missing.empty()) << "without an SPDX-License-Identifier: MIT line:\n" << list;
}

}  // namespace
