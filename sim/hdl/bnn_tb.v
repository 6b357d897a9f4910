// Fast network testbench harness around the generated `bnn_top` (see docs/sim.md).
//
// Why: cocotb costs tens of microseconds per Python wake-up, so driving 10,000 images beat by beat from Python
// would take hours. This wrapper keeps the DUT's port-level behaviour exactly as a cocotb driver would see it
// (valid/ready handshakes, random input gaps, random output backpressure, synchronous reset) but does the per-cycle
// work in HDL: beats come from a memory loaded with $readmemh, results and handshake cycle stamps go to memories
// written with $writememh when cocotb pulses `dump`. Python only starts, resets, waits and checks at the end.
//
// Randomness: two xorshift32 generators (input gaps, output stalls) seeded from `seed`; a cycle withholds `valid`
// when the low 16 bits of its draw are below `gap_prob` (probability * 65536), likewise `ready` with `stall_prob`.
// `valid` and the payload stay stable until accepted, as the stream protocol requires.
//
// With `BNN_AXIS defined the DUT is the AXI4-Stream top (`bnn-hw rtl --interface axis`): aclk = clk, aresetn = !rst,
// one frame per image (s_axis_tlast on each image's last beat), result = the low RESULT_W bits of m_axis_tdata; a
// result beat that arrives flagged (m_axis_tuser) or without m_axis_tlast is recorded inverted, so the scoreboard
// reports it. `BNN_AXI_LITE also ties the AXI4-Lite slave's inputs off.
`default_nettype none
module bnn_tb #(
    parameter integer PAYLOAD_W = 8,        // pixels__payload width (8 * pixels_per_beat)
    parameter integer RESULT_W = 8,         // result__payload width
    parameter integer RESULT_TDATA_W = 8,   // m_axis_tdata width (AXI top only: RESULT_W padded to whole bytes)
    parameter integer BEATS_PER_IMAGE = 1,
    parameter integer IMAGE_SLOTS = 1,      // images the input memory holds
    parameter integer RESULT_SLOTS = 2      // results the output memory holds (more than expected: catches extras)
) (
    input  wire        clk,
    input  wire        rst,          // synchronous, active high: resets the DUT and this harness
    input  wire        start,        // stream while high
    input  wire [31:0] first_image,  // index of the first image in the input memory
    input  wire [31:0] n_images,     // images to send
    input  wire [15:0] gap_prob,
    input  wire [15:0] stall_prob,
    input  wire [31:0] seed,
    input  wire        dump,         // pulse: write the result memories to the files named by plusargs
    output reg  [31:0] cycle,        // cycles since reset was released
    output reg  [31:0] beats_sent,   // accepted input beats
    output reg  [31:0] n_results,    // accepted results (may exceed n_images if the DUT emits extras)
    output wire        done          // every expected result has been accepted
);
    localparam integer BEAT_SLOTS = IMAGE_SLOTS * BEATS_PER_IMAGE;

    // ------------------------------------------------------------------------------------------------- the DUT
    reg  [31:0] beat_in_image;    // position of the beat now on the bus within its image
    reg                  pixels_valid;
    reg  [PAYLOAD_W-1:0] pixels_payload;
    wire                 pixels_ready;
    wire                 result_valid;
    reg                  result_ready;
    wire [RESULT_W-1:0]  result_payload;

`ifdef BNN_AXIS
    wire [RESULT_TDATA_W-1:0] m_axis_tdata;
    wire                      m_axis_tlast, m_axis_tuser;
    assign result_payload = (m_axis_tuser || !m_axis_tlast) ? ~m_axis_tdata[RESULT_W-1:0] : m_axis_tdata[RESULT_W-1:0];
    bnn_top dut (
        .aclk(clk),
        .aresetn(!rst),
        .s_axis_tvalid(pixels_valid),
        .s_axis_tready(pixels_ready),
        .s_axis_tdata(pixels_payload),
        .s_axis_tlast(beat_in_image == BEATS_PER_IMAGE - 1),
        .m_axis_tvalid(result_valid),
        .m_axis_tready(result_ready),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tlast(m_axis_tlast),
`ifdef BNN_AXI_LITE
        .s_axi_awaddr(12'd0), .s_axi_awprot(3'd0), .s_axi_awvalid(1'b0), .s_axi_wdata(32'd0), .s_axi_wstrb(4'd0),
        .s_axi_wvalid(1'b0), .s_axi_bready(1'b1), .s_axi_araddr(12'd0), .s_axi_arprot(3'd0), .s_axi_arvalid(1'b0),
        .s_axi_rready(1'b1),
`endif
        .m_axis_tuser(m_axis_tuser)
    );
`else
    bnn_top dut (
        .clk(clk),
        .rst(rst),
        .pixels__valid(pixels_valid),
        .pixels__ready(pixels_ready),
        .pixels__payload(pixels_payload),
        .result__valid(result_valid),
        .result__ready(result_ready),
        .result__payload(result_payload)
    );
`endif

    // ---------------------------------------------------------------------------------------------- memories
    reg [PAYLOAD_W-1:0] beat_mem [0:BEAT_SLOTS-1];
    reg [RESULT_W-1:0]  result_mem [0:RESULT_SLOTS-1];
    reg [31:0]          result_cycle [0:RESULT_SLOTS-1];  // cycle each result was accepted
    reg [31:0]          first_beat_cycle [0:IMAGE_SLOTS-1];  // cycle each image's first beat was accepted
    reg [31:0]          last_beat_cycle [0:IMAGE_SLOTS-1];

    reg [8*1024-1:0] beats_file, results_file, result_cycles_file, first_cycles_file, last_cycles_file;
    integer i;
    initial begin
        for (i = 0; i < RESULT_SLOTS; i = i + 1) begin
            result_mem[i] = {RESULT_W{1'b0}};
            result_cycle[i] = 32'd0;
        end
        for (i = 0; i < IMAGE_SLOTS; i = i + 1) begin
            first_beat_cycle[i] = 32'd0;
            last_beat_cycle[i] = 32'd0;
        end
        if ($value$plusargs("bnn_beats=%s", beats_file)) $readmemh(beats_file, beat_mem);
        else $display("bnn_tb: no +bnn_beats=FILE given; the input memory is empty");
        if (!$value$plusargs("bnn_results=%s", results_file)) results_file = "results.hex";
        if (!$value$plusargs("bnn_result_cycles=%s", result_cycles_file)) result_cycles_file = "result_cycles.hex";
        if (!$value$plusargs("bnn_first_cycles=%s", first_cycles_file)) first_cycles_file = "first_cycles.hex";
        if (!$value$plusargs("bnn_last_cycles=%s", last_cycles_file)) last_cycles_file = "last_cycles.hex";
    end

    always @(posedge clk) begin
        if (dump) begin
            $writememh(results_file, result_mem);
            $writememh(result_cycles_file, result_cycle);
            $writememh(first_cycles_file, first_beat_cycle);
            $writememh(last_cycles_file, last_beat_cycle);
        end
    end

    // ------------------------------------------------------------------------------------------- randomness
    reg [31:0] rng_in, rng_out;
    wire [31:0] rng_in_a = rng_in ^ (rng_in << 13);
    wire [31:0] rng_in_b = rng_in_a ^ (rng_in_a >> 17);
    wire [31:0] rng_in_next = rng_in_b ^ (rng_in_b << 5);
    wire [31:0] rng_out_a = rng_out ^ (rng_out << 13);
    wire [31:0] rng_out_b = rng_out_a ^ (rng_out_a >> 17);
    wire [31:0] rng_out_next = rng_out_b ^ (rng_out_b << 5);

    // ------------------------------------------------------------------------------------------- input side
    wire [31:0] total_beats = n_images * BEATS_PER_IMAGE;
    reg  [31:0] beats_loaded;     // beats placed on the bus so far
    reg  [31:0] image_on_bus;     // image index (relative to first_image) of the beat now on the bus
    wire        accept_in = pixels_valid && pixels_ready;
    wire        can_load = start && beats_loaded < total_beats;
    wire        offer = rng_in_next[15:0] >= gap_prob;

    always @(posedge clk) begin
        if (rst) begin
            pixels_valid <= 1'b0;
            pixels_payload <= {PAYLOAD_W{1'b0}};
            beats_loaded <= 32'd0;
            beats_sent <= 32'd0;
            beat_in_image <= 32'd0;
            image_on_bus <= 32'd0;
            rng_in <= seed ^ 32'h9E3779B9;
            cycle <= 32'd0;
        end else begin
            cycle <= cycle + 32'd1;
            rng_in <= rng_in_next;
            if (accept_in) begin
                beats_sent <= beats_sent + 32'd1;
                if (beat_in_image == 32'd0) first_beat_cycle[image_on_bus] <= cycle;
                if (beat_in_image == BEATS_PER_IMAGE - 1) last_beat_cycle[image_on_bus] <= cycle;
            end
            if (!pixels_valid || pixels_ready) begin
                if (can_load && offer) begin
                    pixels_valid <= 1'b1;
                    pixels_payload <= beat_mem[first_image * BEATS_PER_IMAGE + beats_loaded];
                    beats_loaded <= beats_loaded + 32'd1;
                    beat_in_image <= beats_loaded % BEATS_PER_IMAGE;
                    image_on_bus <= beats_loaded / BEATS_PER_IMAGE;
                end else begin
                    pixels_valid <= 1'b0;
                end
            end
        end
    end

    // ------------------------------------------------------------------------------------------ output side
    always @(posedge clk) begin
        if (rst) begin
            result_ready <= 1'b0;
            n_results <= 32'd0;
            rng_out <= seed ^ 32'h7F4A7C15;
        end else begin
            rng_out <= rng_out_next;
            result_ready <= start && rng_out_next[15:0] >= stall_prob;
            if (result_valid && result_ready) begin
                if (n_results < RESULT_SLOTS) begin
                    result_mem[n_results] <= result_payload;
                    result_cycle[n_results] <= cycle;
                end
                n_results <= n_results + 32'd1;
            end
        end
    end

    assign done = n_results >= n_images;
endmodule
`default_nettype wire
