# SPDX-License-Identifier: MIT
# The API reference: `cmake --build <dir> --target docs` writes <dir>/docs/html/index.html with
# Doxygen (Debian's `doxygen` package) from the /// comments of include/asyncio/, with README.md
# and docs/*.md as its pages. Only declared when doxygen is found.
#
# Every public type and function must be documented: EXTRACT_ALL=NO with WARN_IF_UNDOCUMENTED,
# and any warning fails the build (WARN_AS_ERROR=FAIL_ON_WARNINGS). The implementation details
# (include/asyncio/detail/ and namespace asyncio::detail) are left out of the reference and out
# of that requirement: they are documented for maintainers, not promised to users.
find_package(Doxygen 1.9 QUIET)
find_package(Python3 COMPONENTS Interpreter QUIET)
if(NOT DOXYGEN_FOUND OR NOT Python3_Interpreter_FOUND)
  message(STATUS "asyncio: doxygen or python3 not found, no `docs` target")
  return()
endif()

set(DOXYGEN_PROJECT_NAME "asyncio for C++")
set(DOXYGEN_PROJECT_NUMBER ${PROJECT_VERSION})
set(DOXYGEN_PROJECT_BRIEF "Python's asyncio model for C++20")
set(DOXYGEN_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/docs)
set(DOXYGEN_GENERATE_HTML YES)
set(DOXYGEN_GENERATE_LATEX NO)
set(DOXYGEN_HAVE_DOT NO)
set(DOXYGEN_QUIET YES)
set(DOXYGEN_RECURSIVE YES)
set(DOXYGEN_FILE_PATTERNS *.hpp *.md)
set(DOXYGEN_EXCLUDE ${PROJECT_SOURCE_DIR}/include/asyncio/detail)
set(DOXYGEN_EXCLUDE_SYMBOLS asyncio::detail asyncio::detail::*)
set(DOXYGEN_EXTRACT_ALL NO)
set(DOXYGEN_EXTRACT_PRIVATE NO)
set(DOXYGEN_HIDE_UNDOC_RELATIONS YES)
set(DOXYGEN_WARN_IF_UNDOCUMENTED YES)
set(DOXYGEN_WARN_IF_DOC_ERROR YES)
set(DOXYGEN_WARN_NO_PARAMDOC NO)  # one sentence per function is the house style, not \param lists
set(DOXYGEN_WARN_AS_ERROR FAIL_ON_WARNINGS)
set(DOXYGEN_FULL_PATH_NAMES YES)
set(DOXYGEN_STRIP_FROM_PATH ${PROJECT_SOURCE_DIR})
set(DOXYGEN_STRIP_FROM_INC_PATH ${PROJECT_SOURCE_DIR}/include)
set(DOXYGEN_USE_MDFILE_AS_MAINPAGE ${PROJECT_SOURCE_DIR}/README.md)
set(DOXYGEN_MARKDOWN_SUPPORT YES)
set(DOXYGEN_IMAGE_PATH ${PROJECT_SOURCE_DIR}/docs/img)
set(DOXYGEN_JAVADOC_AUTOBRIEF YES)
set(DOXYGEN_SORT_MEMBER_DOCS NO)
# The guides link to their sections as GitHub renders them; the filter gives Doxygen the anchors.
set(DOXYGEN_FILTER_PATTERNS "*.md=${PROJECT_SOURCE_DIR}/cmake/doxygen_md_filter.py")  # run by its #! line

file(GLOB _asyncio_guides ${PROJECT_SOURCE_DIR}/docs/*.md)
doxygen_add_docs(docs
  ${PROJECT_SOURCE_DIR}/include/asyncio ${PROJECT_SOURCE_DIR}/README.md ${_asyncio_guides}
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  COMMENT "API reference: ${CMAKE_BINARY_DIR}/docs/html/index.html")
