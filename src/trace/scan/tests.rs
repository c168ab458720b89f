use super::*;

/// Everything found in `text`, fed line by line to one scanner.
fn scan(text: &str) -> Vec<(u32, Role)> {
    let mut scanner = PanicScanner::new();
    text.lines()
        .flat_map(|line| scanner.line(line))
        .map(|found| (found.address, found.role))
        .collect()
}

use Role::{Frame, ProgramCounter as Pc, ReturnAddress as Ra, StackWord};

#[test]
fn esp_backtrace_panic_frames_after_header_and_blank_line() {
    let text = "\
====================== PANIC ======================
panicked at src/main.rs:43:5:
explicit panic at 0x42001234

Backtrace:

0x42000c2a
0x420001f8
0x42003d4e

";
    assert_eq!(
        scan(text),
        [
            (0x4200_0c2a, Frame),
            (0x4200_01f8, Frame),
            (0x4200_3d4e, Frame)
        ]
    );
}

#[test]
fn esp_backtrace_frames_end_at_blank_line_and_at_other_text() {
    let text = "\
Backtrace:

0x42000c2a

0x42000444
Backtrace:
0x42000c2a
I (100) app: still 0x42000c2a here
0x42000444
";
    assert_eq!(scan(text), [(0x4200_0c2a, Frame), (0x4200_0c2a, Frame)]);
}

#[test]
fn esp_backtrace_through_defmt_with_times_levels_and_locations() {
    let text = "\
5.904129 [ERROR] ====================== PANIC ====================== (esp_backtrace esp-backtrace/src/lib.rs:70)
5.904151 [ERROR] panicked at src/main.rs:43:5 (esp_backtrace esp-backtrace/src/lib.rs:70)
5.904265 [ERROR] Backtrace: (esp_backtrace esp-backtrace/src/lib.rs:70)
5.904287 [ERROR]  (esp_backtrace esp-backtrace/src/lib.rs:70)
5.904300 [ERROR] 0x420ef8ec (esp_backtrace esp-backtrace/src/lib.rs:70)
5.904321 [ERROR] 0x42010abc (esp_backtrace esp-backtrace/src/lib.rs:70)
5.904400 [INFO ] heap at 0x3fc8a000 (app src/main.rs:10)
";
    assert_eq!(scan(text), [(0x420e_f8ec, Frame), (0x4201_0abc, Frame)]);
}

#[test]
fn espflash_decoded_lines_between_frames_are_skipped() {
    let text = "\
Backtrace:

0x400e45e9
0x400e45e9 - core::result::unwrap_failed
    at C:\\rust\\library\\core\\src\\result.rs:1704
0x400d96cf
0x400d96cf - core::result::Result<T,E>::unwrap
    at C:\\rust\\library\\core\\src\\result.rs:1109
";
    assert_eq!(scan(text), [(0x400e_45e9, Frame), (0x400d_96cf, Frame)]);
}

#[test]
fn esp_backtrace_risc_v_exception_mepc_trap_frame_and_frames() {
    let text = "\
Exception 'Load access fault' mepc=0x42000c2a, mtval=0x00000010
TrapFrame
PC=0x42000c2a         RA/x1=0x42000c1e      SP/x2=0x3fc8ffe0      GP/x3=0x3fc89000      TP/x4=0x00000000
T0/x5=0x42000000      T1/x6=0x42001234      T2/x7=0x00000000      S0/FP/x8=0x3fc8fff0   S1/x9=0x00000000
A0/x10=0x42000c1e     A1/x11=0x3fc8ffe4     A2/x12=0x00000000     A3/x13=0x00000000     A4/x14=0x00000000

MSTATUS=0x00001880
MCAUSE=0x00000005
MTVAL=0x00000010
        
0x42000c1a
0x420001f4
";
    assert_eq!(
        scan(text),
        [
            (0x4200_0c2a, Pc),
            (0x4200_0c2a, Pc),
            (0x4200_0c1e, Ra),
            (0x4200_0c1a, Frame),
            (0x4200_01f4, Frame),
        ]
    );
}

#[test]
fn esp_backtrace_xtensa_context_takes_pc_and_unwindowed_a0() {
    let text = "\
Exception occurred 'LoadProhibited'
Context
PC=0x400d2e5c       PS=0x00060330
A0=0x800d2a2f       A1=0x3ffc3f40       A2=0x00000000       A3=0x3ffc3f60       A4=0x400d2a2c
A5=0x00000000       A6=0x00000000       A7=0x00000000       A8=0x800d2e5c       A9=0x3ffc3f20
SAR=00000020
EXCCAUSE=0x0000001c EXCVADDR=0x00000000
LBEG=0x4000c2e0     LEND=0x4000c2f6     LCOUNT=0x00000000
0x400d2a2c
0x400d0af5
";
    assert_eq!(
        scan(text),
        [
            (0x400d_2e5c, Pc),
            (0x400d_2a2f, Ra),
            (0x400d_2a2c, Frame),
            (0x400d_0af5, Frame),
        ]
    );
}

#[test]
fn esp_hal_defmt_exception_without_0x_and_decimal_trap_frame() {
    let text = "\
5.903834 [ERROR] panicked at 'Exception 'Load access fault' mepc=420ef8f0, mtval=ffd0000f
TrapFrame { ra: 1108277650, t0: 202, t1: 1108942680, a0: 8 }' (esp_hal src/exception_handler/mod.rs:46)
";
    assert_eq!(scan(text), [(0x420e_f8f0, Pc), (0x420e_f992, Ra)]);
}

#[test]
fn stack_overflow_sentence_gives_pc_and_caller() {
    assert_eq!(
        scan("Stack overflow detected at 0x42001234, possibly called by 0x42005678"),
        [(0x4200_1234, Pc), (0x4200_5678, Ra)]
    );
    assert_eq!(scan("the 0x42001234 was called by 0x42005678"), []);
}

#[test]
fn idf_risc_v_dump_takes_mepc_and_ra_only() {
    let text = "\
Guru Meditation Error: Core  0 panic'ed (Load access fault). Exception was unhandled.

Core  0 register dump:
MEPC    : 0x40017246  RA      : 0x42102ec0  SP      : 0x4083eb70  GP      : 0x408241b4  
TP      : 0x4083ec30  T0      : 0x40030dca  T1      : 0x0000000f  T2      : 0xfff9f000  
S0/FP   : 0xffffffff  S1      : 0x00000001  A0      : 0x42000001  A1      : 0xffffffff  
MSTATUS : 0x00001881  MTVEC   : 0x40800001  MCAUSE  : 0x00000005  MTVAL   : 0x42000010  
MHARTID : 0x00000000  

Stack memory:
4083eb70: 0x40834000 0x42102ec0 0x00000000 0x4200a000 0x00000003 0x00000000 0x00000001 0x40800030
";
    assert_eq!(scan(text), [(0x4001_7246, Pc), (0x4210_2ec0, Ra)]);
}

#[test]
fn idf_dump_behind_monitor_stamps_and_quotes() {
    let text = "\
[14:04:29]MEPC    : 0x40001be4  RA      : 0x42075ee2  SP      : 0x3fca11b0  GP      : 0x3fc8e600  
> PC      : 0x4012f3b6  PS      : 0x00060c30  A0      : 0x8013c22e  A1      : 0x3ffeed30
";
    assert_eq!(
        scan(text),
        [
            (0x4000_1be4, Pc),
            (0x4207_5ee2, Ra),
            (0x4012_f3b6, Pc),
            (0x4013_c22e, Ra)
        ]
    );
}

#[test]
fn idf_xtensa_dump_and_backtrace_pairs() {
    let text = "\
Core  1 register dump:
PC      : 0x4037d680  PS      : 0x00060d33  A0      : 0x8037fde0  A1      : 0x3fc9d090  
A2      : 0xffcf1314  A3      : 0xb33fffff  A4      : 0x0000cdcd  A5      : 0x00060d23  
A8      : 0x8200abcd  A9      : 0xffffffff  A10     : 0x00000010  A11     : 0x00000000  
EXCVADDR: 0xffcf1314  LBEG    : 0x400570e8  LEND    : 0x400570f3  LCOUNT  : 0xffffffff  

Backtrace: 0x4037d67d:0x3fc9d090 0x4037fddd:0x3fc9d0d0 0x42008710:0x3fc9d160 |<-CORRUPTED

ELF file SHA256: f453f73866ac0cd6
";
    assert_eq!(
        scan(text),
        [
            (0x4037_d680, Pc),
            (0x4037_fde0, Ra),
            (0x4037_d67d, Frame),
            (0x4037_fddd, Frame),
            (0x4200_8710, Frame),
        ]
    );
}

#[test]
fn xtensa_a0_mapping_keeps_call4_addresses_and_skips_plain_data() {
    assert_eq!(remove_window_increment(0x800d_5678), Some(0x400d_5678));
    assert_eq!(remove_window_increment(0xc00d_5678), Some(0x400d_5678));
    assert_eq!(remove_window_increment(0x400d_5678), Some(0x400d_5678));
    assert_eq!(remove_window_increment(0x3ffb_1234), None);
    let text =
        "PC      : 0x400d1234  PS      : 0x00060030  A0      : 0x3ffb0000  A1      : 0x3ffb1230";
    assert_eq!(scan(text), [(0x400d_1234, Pc)]);
}

#[test]
fn idf_backtrace_continues_on_lines_of_pairs_and_skips_monitor_output() {
    let text = "\
Backtrace: 0x400014fa:0x3ffeef40 0x401b1ed5:0x3ffeef50
0x401b3525:0x3ffef260 0x401bf1ae:0x3ffef290)
0x401b1ed5: _vfprintf_r at /idf/newlib/libc/stdio/vfprintf.c:1528

0x401b3525: vprintf at /idf/newlib/libc/stdio/vprintf.c:34
";
    assert_eq!(
        scan(text),
        [
            (0x4000_14fa, Frame),
            (0x401b_1ed5, Frame),
            (0x401b_3525, Frame),
            (0x401b_f1ae, Frame),
        ]
    );
}

#[test]
fn idf_abort_line_gives_its_pc() {
    assert_eq!(
        scan("abort() was called at PC 0x42029be5 on core 0"),
        [(0x4202_9be5, Pc)]
    );
}

#[test]
fn esp8266_exception_registers_and_stack_words() {
    let text = "\
--------------- CUT HERE FOR EXCEPTION DECODER ---------------

Exception (28):
epc1=0x40201234 epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000008 depc=0x00000000

>>>stack>>>

ctx: cont
sp: 3ffffe00 end: 3fffffd0 offset: 0190
3ffffe00:  3fffdad0 00000000 3ffee5f8 40201e5c  
3ffffe10:  40100220 40000f49 4010ffff 40110000 <
3fffffc0:  feefeffe feefeffe 3ffe85d8 40300000  
<<<stack<<<

--------------- CUT HERE FOR EXCEPTION DECODER ---------------
3ffffe20:  40201e5c 40201e5c 40201e5c 40201e5c
";
    assert_eq!(
        scan(text),
        [
            (0x4020_1234, Pc),
            (0x4020_1e5c, StackWord),
            (0x4010_0220, StackWord),
            (0x4010_ffff, StackWord),
        ]
    );
}

#[test]
fn esp8266_nonzero_epc2_epc3_depc_count_excvaddr_never() {
    let text =
        "epc1=0x40105a3c epc2=0x40201000 epc3=0x4010aaaa excvaddr=0x40201111 depc=0x40202222";
    assert_eq!(
        scan(text),
        [
            (0x4010_5a3c, Pc),
            (0x4020_1000, Pc),
            (0x4010_aaaa, Pc),
            (0x4020_2222, Pc),
        ]
    );
}

#[test]
fn esp8266_stack_behind_arduino_monitor_times() {
    let text = "\
10:10:43.045 -> Exception (29):
10:10:43.045 -> epc1=0x4022a1f8 epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000000 depc=0x00000000
10:10:43.045 -> >>>stack>>>
10:10:43.045 -> 3fff5950: 00000000 00000000 00000100 40235ae1
3fff5980: 00000000 00000000 3ffee9d2 40235e09
10:10:43.073 -> <<<stack<<<
";
    assert_eq!(
        scan(text),
        [
            (0x4022_a1f8, Pc),
            (0x4023_5ae1, StackWord),
            (0x4023_5e09, StackWord)
        ]
    );
}

#[test]
fn esp8266_stack_block_without_end_marker_runs_out() {
    let text = "\
>>>stack>>>
3ffffe00:  40201e5c 00000000 00000000 00000000
boot line one
boot line two
boot line three
boot line four
3ffffe10:  40201e5c 00000000 00000000 00000000
";
    assert_eq!(scan(text), [(0x4020_1e5c, StackWord)]);
}

#[test]
fn block_state_ends_at_elf_sha_and_reboot() {
    let text = "\
Backtrace:
ELF file SHA256: 0000000000000000
0x42000c2a
>>>stack>>>
Rebooting...
3ffffe00:  40201e5c 00000000 00000000 00000000
";
    assert_eq!(scan(text), []);
}

#[test]
fn ordinary_lines_with_hex_yield_nothing() {
    let text = "\
I (123) wifi: mac 0x3ffb1234
I (29) heap_init: At 3FFAE6E0 len 00001920 (6 KiB): DRAM
I (83) esp_image: segment 0: paddr=00010020 vaddr=40050020 size=12d54h ( 77140) map
rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)
Saved PC:0x4038061c
SPIWP:0xee
load:0x40078000,len:9720
entry 0x400806b8
PC: 0x40001234
MTVAL   : 0x42000010  MCAUSE  : 0x00000005
SP      : 0x3fca11b0  EXCVADDR: 0x42001111  PS      : 0x00060030
3ffb0000: 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f
24:0a:c4:00:01:10
0x42000c2a
load 0x4010f000, len 1384, room 16
3ffffe00:  40201e5c 00000000 00000000 00000000
";
    assert_eq!(scan(text), []);
}

#[test]
fn nothing_found_allocates_nothing() {
    let mut scanner = PanicScanner::new();
    for line in ["I (123) wifi: mac 0x3ffb1234", "", "Backtrace:", "hello"] {
        assert_eq!(scanner.line(line).capacity(), 0, "{line:?}");
    }
}

#[test]
fn prefixes_are_stripped() {
    assert_eq!(
        text::payload("  [14:04:29][D][esp-idf:000]: I (645) wifi_init: x"),
        "x"
    );
    assert_eq!(text::payload("10:10:43.045 -> epc1=0x1"), "epc1=0x1");
    assert_eq!(
        text::payload("5.904287 [ERROR] 0x42 (a b:1)"),
        "0x42 (a b:1)"
    );
    assert_eq!(text::payload("> >>>stack>>>"), ">>>stack>>>");
    assert_eq!(text::payload(">>>stack>>>"), ">>>stack>>>");
    assert_eq!(
        text::payload("E (1234) task_wdt: Task watchdog"),
        "Task watchdog"
    );
}

#[test]
fn arduino_monitor_stamp_alone_is_a_blank_line() {
    assert_eq!(text::payload("10:10:43.045 ->"), "");
    assert_eq!(text::payload("10:10:43.045 -> x"), "x");
    assert_eq!(text::payload("a -> b"), "a -> b");
}
