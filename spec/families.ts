// Loads every instruction family so that its executors and rules are registered.
// A new family file adds one import here.
import "./paging/rules.ts";
import "./instructions/table.ts";
import "./transitions/event-table.ts";
import "./decode/rules.ts";
import "./transitions/system-table.ts";
